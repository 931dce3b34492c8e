"""What python -m alae_tf.align_faces and alae_tf.align_digits share: the photos given and their
output names, the output's side, and how the command ends (its errors, Ctrl-C, SIGTERM and SIGHUP)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from alae_tf.config import load_config_file
from alae_tf.data.files import list_image_files
from alae_tf.errors import ALAEError, out_of_disk_space
from alae_tf.run_layout import RunDir, run_problem
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped


def add_photo_arguments(parser, written: str, out_help: str, size_help: str) -> None:
    """The arguments the functions below read: the photos (IMAGE...), --out, and --run or --size
    for the side of the images written (`written`, e.g. "faces", names them in --run's help)."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="photos (PNG, JPEG, WebP or BMP), or folders of them (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--run", type=Path, help=f"the run whose model will read the {written}: its image size is used")
    side.add_argument("--size", type=int, help=size_help)


def photos_and_names(paths: list[Path], out: Path, all_faces: bool) -> list[tuple[Path, str]]:
    """(photo, output name without suffix), each photo once: a file given keeps its name, a
    folder's photos their paths below it. Refused before any work: two photos that would write
    one file, an output that would replace a photo, an `out` inside a folder given."""
    found = {}
    for path in paths:
        if path.is_dir() and out.resolve().is_relative_to(path.resolve()):
            raise ALAEError(f"--out {out} is inside {path}, whose photos are read: a second run would read the "
                            "images it wrote as photos; choose a folder outside it")
        if path.is_dir():
            named = [(photo, photo.relative_to(path).with_suffix("").as_posix()) for photo in list_image_files(path)]
        elif path.is_file():
            named = [(path, path.stem)]
        else:
            raise ALAEError(f"{path}: no such image file or folder")
        for photo, name in named:
            found.setdefault(photo.resolve(), (photo, name))
    by_name = {}
    for photo, name in found.values():
        if (first := by_name.setdefault(name, photo)) != photo:
            raise ALAEError(f"{first} and {photo} would both be written as {name}.png: give them separate --out folders")
    for photo, name in found.values():
        face = re.fullmatch(r"(.+)_face\d+", name)
        if all_faces and face and face[1] in by_name:
            raise ALAEError(f"{photo} would be written as {name}.png, the name --all-faces gives a face of "
                            f"{by_name[face[1]]}: give them separate --out folders")
        if (out / f"{name}.png").resolve() in found:
            raise ALAEError(f"{out / name}.png would replace the photo {photo}: choose another --out")
    return list(found.values())


def output_side(args, default: int, largest: int) -> int:
    """The side of the images written: the run's (--run), --size, or `default`."""
    if args.run is None:
        side = default if args.size is None else args.size
        if not 4 <= side <= largest:
            raise ALAEError(f"--size {side}: a side of 4 to {largest} pixels")
        return side
    if problem := run_problem(args.run):
        raise ALAEError(problem)
    return int(load_config_file(RunDir(args.run).config_file).model.image_shape[0])


def run_photo_command(work, args, written: str) -> int:
    """work(args)'s exit code; an error is one line (2), a stop names `written` (e.g. "faces") kept in --out."""
    try:
        with stop_signals_raise_stopped():
            return work(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # writing --out: a full disk, no permission, a file where a folder goes
        what = "the disk is full" if out_of_disk_space(exc) else exc.strerror
        print(f"error: cannot write to {args.out} ({what}); the {written} written before are kept", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); the {written} written so far are in {args.out}", file=sys.stderr)
        return interrupted_exit_code(exc)
