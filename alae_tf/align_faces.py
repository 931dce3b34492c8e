"""python -m alae_tf.align_faces: cut the faces out of photos as the face models' training images
were (serving.faces), for project, edit and the studio to read."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from alae_tf.config import load_config_file
from alae_tf.data.files import list_image_files, open_image, unreadable_reason
from alae_tf.errors import ALAEError, out_of_disk_space
from alae_tf.run_layout import RunDir, run_problem
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving.atomic_write import replacing
from serving.command_line import CommandParser
from serving.faces import CROPS, MAX_SIDE, NO_FACE_HINT, FaceFinder, FacesUnavailable, alignment_square, face_image
from serving.model_pixels import whole_pixels

DEFAULT_SIDE = 1024


def parse_args(argv=None) -> argparse.Namespace:
    parser = CommandParser(
        prog="python -m alae_tf.align_faces",
        description=(
            "Find the faces in photos (dlib's frontal face detector and 68 landmarks) and cut each out as an "
            "upright square set by its eyes and mouth, the crop the face models were trained on (a face only "
            "centre-cropped is framed unlike any image their encoder learned from). The squares are written as PNG "
            "files to --out, for training and for python -m alae_tf.project / .edit --images (the studio cuts its "
            'uploads itself with --align-faces). Needs the faces extra: pip install -e ".[faces]".'),
        epilog="example: python -m alae_tf.align_faces me.jpg holiday/ --out aligned --run runs/official_ffhq",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="photos (PNG, JPEG, WebP or BMP), or folders of them (searched recursively)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the aligned faces: PHOTO.png for each photo's largest face (a folder's "
                             "photos keep their paths below it); created if needed; existing files are replaced")
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--run", type=Path, help="the run whose model will read the faces: its image size is used")
    side.add_argument("--size", type=int,
                      help=f"the side of the squares in pixels, 4 to {MAX_SIDE} (default {DEFAULT_SIDE}, FFHQ's)")
    parser.add_argument("--crop", choices=sorted(CROPS), default="ffhq",
                        help="ffhq (default): the FFHQ and CelebA-HQ crop, for the official FFHQ and CelebA-HQ models "
                             "and runs trained on such images; celeba: the official CelebA 128x128 model's tighter crop")
    parser.add_argument("--all-faces", action="store_true",
                        help="every face found (PHOTO_face2.png, ... for the second largest on); default: the largest")
    return parser.parse_args(argv)


def output_side(args) -> int:
    if args.run is None:
        side = DEFAULT_SIDE if args.size is None else args.size
        if not 4 <= side <= MAX_SIDE:
            raise ALAEError(f"--size {side}: a side of 4 to {MAX_SIDE} pixels (the largest model's)")
        return side
    if problem := run_problem(args.run):
        raise ALAEError(problem)
    height, width, _ = load_config_file(RunDir(args.run).config_file).model.image_shape
    return int(height)


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


def align_photos(args) -> int:
    side = output_side(args)
    if args.out.exists() and not args.out.is_dir():
        raise ALAEError(f"--out {args.out}: a file, not a folder")
    photos = photos_and_names(args.images, args.out, args.all_faces)
    try:
        finder = FaceFinder()
    except FacesUnavailable as exc:
        raise ALAEError(str(exc)) from None
    written, faceless, unreadable = 0, [], []
    for number, (photo, name) in enumerate(photos, 1):
        counter = f"[{number}/{len(photos)}]"
        try:
            with open_image(photo) as opened:
                image, _ = whole_pixels(opened, "RGB")
            faces = finder.landmarks(image)
        except Exception as exc:  # a damaged file, or one the detector cannot take: named and skipped, as training skips
            print(f"{counter} warning: {photo}: skipped: {unreadable_reason(exc)}", file=sys.stderr)
            unreadable.append(photo)
            continue
        if not faces:
            print(f"{counter} warning: {photo}: no face found ({NO_FACE_HINT})", file=sys.stderr)
            faceless.append(photo)
            continue
        outputs, enlarged, resized_only = [], [], False
        for index, landmarks in enumerate(faces if args.all_faces else faces[:1]):
            target = args.out / (name + ("" if index == 0 else f"_face{index + 1}") + ".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            square = alignment_square(landmarks, args.crop)
            face, already = face_image(image, square, side)
            resized_only = resized_only or already
            with replacing(target) as partial:
                face.save(partial, format="PNG")
            outputs.append(str(target))
            if (across := round(np.hypot(*(square[3] - square[0])))) < side:
                enlarged.append(across)
        written += len(outputs)
        notes = [] if args.all_faces or len(faces) == 1 else [f"the largest of {len(faces)} faces; --all-faces for all"]
        if resized_only:
            notes.append("already aligned: resized only")
        if enlarged:
            notes.append(f"enlarged from {', '.join(map(str, enlarged))} pixels across")
        shown = f" ({'; '.join(notes)})" if notes else ""
        print(f"{counter} {photo} -> {', '.join(outputs)}{shown}", flush=True)
    print(f"{written} face(s) of {side}x{side} ({args.crop} crop) written to {args.out}"
          + (f"; no face found in {len(faceless)} photo(s)" if faceless else "")
          + (f"; {len(unreadable)} file(s) could not be read" if unreadable else ""))
    if not written:
        raise ALAEError("no face was found in any of the photos")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with stop_signals_raise_stopped():
            return align_photos(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # writing --out: a full disk, no permission, a file where a folder goes
        what = "the disk is full" if out_of_disk_space(exc) else exc.strerror
        print(f"error: cannot write to {args.out} ({what}); the faces written before are kept", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); the faces written so far are in {args.out}", file=sys.stderr)
        return interrupted_exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
