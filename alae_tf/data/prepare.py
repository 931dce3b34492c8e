"""python -m alae_tf.data.prepare SRC DST --resolution R: a folder of images -> multi-resolution TFRecords.

DST gets one StyleGAN/ALAE-layout TFRecord file per level (images-r02.tfrecords for 4x4 up to
images-rNN.tfrecords for RxR) and a meta.json; `open_image_source("prepared", DST, ...)` reads it
(as can the official StyleGAN/ALAE loaders). Images are decoded with the same `load_square` that the
"folder" source uses, so both give the same pixels for the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import alae_tf
from alae_tf.atomic_file import STAGING_LOCK, make_staging_folder, remove_abandoned_staging
from alae_tf.data.files import (
    IMAGE_EXTENSIONS,
    META_FILE,
    default_test_count,
    describe_skipped,
    encode_record,
    held_out_positions,
    image_channels,
    list_image_files,
    load_square,
    ordered_map,
    read_header,
    record_file_name,
    returning_errors,
    unreadable_reason,
)
from alae_tf.data.pyramid import box_pyramid, check_resolution, resolution_levels
from alae_tf.errors import ALAEError, DataError, out_of_disk_space, written_file
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving.command_line import CommandParser

FORMAT = "alae_tf multi-resolution TFRecords (StyleGAN/ALAE layout: features shape [C,H,W], data raw uint8 CHW)"
RECORD_OVERHEAD_BYTES = 70  # a record's Example fields and TFRecord framing beside its pixels (50-67 measured)


def parse_args(argv=None) -> argparse.Namespace:
    parser = CommandParser(
        prog="python -m alae_tf.data.prepare",
        description=(
            "Convert a folder of images into a dataset for StyleALAE training (--dataset prepared). "
            f"Every {'/'.join(ext[1:] for ext in IMAGE_EXTENSIONS)} file under SRC (recursive, hidden "
            "names skipped) is centre-cropped to a square and resized to RxR (PIL LANCZOS; smaller images "
            "are upscaled and counted), and every lower power-of-two level down to 4x4 is stored as a "
            "box-filter downsample of it. Unreadable files are skipped and listed. The output is written "
            "to a temporary folder and renamed to DST at the end, so an interrupted run leaves nothing behind."
        ),
        epilog="example: python -m alae_tf.data.prepare ~/photos data/photos256 --resolution 256 --mirror",
    )
    parser.add_argument("src", metavar="SRC", type=Path, help="folder of image files (searched recursively)")
    parser.add_argument("dst", metavar="DST", type=Path, help="output folder (new or empty, unless --overwrite)")
    parser.add_argument("--resolution", type=int, required=True, help="output side R in pixels: a power of two >= 4")
    parser.add_argument("--test-count", type=int,
                        help="images held out for testing, evenly spread over the files in path order "
                             "(default: min(1000, 10%% of the images)); training may override it")
    parser.add_argument("--mirror", action="store_true",
                        help="train also on horizontally flipped copies of the training images (made at "
                             "training time: no extra disk; the held-out images are never flipped into training; "
                             "the set doubles, so do epochs; the config's data.random_flip flips at random instead, "
                             "as the official code does)")
    parser.add_argument("--grayscale", action="store_true",
                        help="store 1 channel (default: 1 channel only if every image is grayscale, else RGB; a "
                             "grayscale dataset also trains an RGB model, read with its gray channel repeated)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def prepare(src: Path, dst: Path, resolution: int, *, test_count: int | None = None, mirror: bool = False,
            grayscale: bool = False, overwrite: bool = False, verbose: bool = True) -> dict:
    """Write the prepared dataset to `dst`; returns its meta.json contents plus "seconds".

    verbose: show a progress bar. Raises ALAEError (DataError/ConfigError) on bad input.
    """
    started = time.perf_counter()
    check_resolution(resolution)
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    _check_paths(src, dst, overwrite)
    import tensorflow as tf  # (seconds to import: after the arguments are checked, and not for --help)

    files = list_image_files(src)
    candidates, modes, skipped, small = [], [], [], set()
    for path, header in zip(files, ordered_map(returning_errors(read_header), files)):
        if isinstance(header, Exception):
            skipped.append((path, unreadable_reason(header)))
            continue
        candidates.append(path)
        modes.append(header.mode)
        if min(header.size) < resolution:
            small.add(path)
    if test_count is not None:
        held_out_positions(len(candidates), test_count)  # fail before the long part
    channels = 1 if grayscale else image_channels(modes)
    _check_free_space(dst, len(candidates), resolution, channels)
    # A killed prepare's partial folder (its lock free) would hold a dataset's worth of disk, hidden.
    remove_abandoned_staging(dst.parent, f".{dst.name}.partial-")
    partial = dst.parent / f".{dst.name}.partial-{os.getpid()}"
    try:
        partial_lock = make_staging_folder(partial)
    except OSError as exc:
        raise DataError(f"{dst}: cannot be created ({exc.strerror})") from None
    try:
        written, failed = _write_records(candidates, partial, resolution, channels, verbose)
        skipped = sorted(skipped + failed)
        if not written:
            raise DataError(f"{src}: none of the {len(files)} image files can be read")
        test_count = default_test_count(written) if test_count is None else test_count
        held_out_positions(written, test_count)
        upscaled = len(small - {path for path, _ in failed})
        meta = _meta(src, resolution, channels, written, test_count, mirror, upscaled, skipped)
        (partial / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        (partial / STAGING_LOCK).unlink()  # not part of the dataset
        _move_into_place(partial, dst)
    except (OSError, tf.errors.OpError) as exc:
        if not out_of_disk_space(exc):
            raise
        if verbose and sys.stdout.isatty():
            print(flush=True)  # end the line of Keras's progress bar
        raise DataError(f"no space left on the disk, writing {written_file(exc, f'into {dst.parent}')}; nothing was "
                        f"written to {dst}: free some space and run the command again") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        partial_lock.close()
    meta["seconds"] = round(time.perf_counter() - started, 3)
    return meta


def dataset_bytes(count: int, resolution: int, channels: int) -> int:
    """The size of a prepared dataset: raw pixels at every level (~4/3 of the top level's) and each
    record's framing, whatever the source files' compression."""
    return count * sum(level * level * channels + RECORD_OVERHEAD_BYTES for level in resolution_levels(resolution))


def _check_free_space(dst: Path, count: int, resolution: int, channels: int) -> None:
    """Refuses, before hours of writing, a dataset larger than the free space where DST goes."""
    folder = next(parent for parent in dst.parents if parent.exists())  # the partial folder is DST's sibling
    needed, free = dataset_bytes(count, resolution, channels), shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(f"{count} images at {resolution}x{resolution} and its lower levels take ~{needed / 1e9:.1f} GB "
                        f"(raw pixels, {dataset_bytes(1, resolution, channels) / 1e6:.2f} MB per image), and the disk "
                        f"holding {folder} has {free / 1e9:.1f} GB free: free some space or choose another DST")


def _check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    if not src.is_dir():
        what = "a file, not a directory" if src.exists() else "no such directory"
        raise DataError(f"{src}: {what}; SRC must be a folder of images")
    if dst == src or src.is_relative_to(dst):
        raise DataError(f"{dst}: DST must not be SRC or contain it")
    empty_folder = dst.is_dir() and not any(dst.iterdir())  # nothing to lose: made for the dataset
    if dst.exists() and not overwrite and not empty_folder:
        raise DataError(f"{dst}: already exists; pass --overwrite to replace it, or choose another DST")
    if dst.exists() and not dst.is_dir():
        raise DataError(f"{dst}: exists and is not a directory; remove it or choose another DST")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / META_FILE).is_file():
        # --overwrite replaces a prepared dataset, never a folder of something else
        raise DataError(f"{dst}: holds files but is not a prepared dataset (no {META_FILE}); --overwrite replaces "
                        "only those: choose another DST")


def _write_records(files: list[Path], directory: Path, resolution: int, channels: int,
                   verbose: bool) -> tuple[int, list[tuple[Path, str]]]:
    """Decode `files` in order and append each level to its TFRecord file; (written, [(file, reason)])."""
    import tensorflow as tf

    from alae_tf.progress import progress_bar

    levels = resolution_levels(resolution)
    progress = progress_bar(len(files), unit_name="image", verbose=verbose)
    writers = {level: tf.io.TFRecordWriter(str(directory / record_file_name(level))) for level in levels}
    written, failed = 0, []
    try:
        decode = returning_errors(lambda path: load_square(path, resolution, channels))
        for number, (path, image) in enumerate(zip(files, ordered_map(decode, files)), start=1):
            if isinstance(image, Exception):
                failed.append((path, unreadable_reason(image)))
            else:
                for level, pixels in box_pyramid(image).items():
                    writers[level].write(encode_record(pixels))
                written += 1
            progress.update(number)
    finally:
        for writer in writers.values():
            writer.close()
    return written, failed


def _meta(src: Path, resolution: int, channels: int, count: int, test_count: int, mirror: bool,
          upscaled: int, skipped: list[tuple[Path, str]]) -> dict:
    levels = resolution_levels(resolution)
    return {
        "format": FORMAT,
        "tool": f"alae_tf.data.prepare {alae_tf.__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(src),
        "resolution": resolution,
        "channels": channels,
        "levels": {str(level): record_file_name(level) for level in levels},
        "num_images": count,
        "test_count": test_count,
        "held_out": "positions (2j+1)*num_images // (2*test_count), j < test_count, of the records (path order)",
        "mirror": mirror,
        "processing": "centre crop, PIL LANCZOS resize to resolution; lower levels: block mean rounded half to even",
        "upscaled": upscaled,
        "skipped": [{"file": path.relative_to(src).as_posix(), "reason": reason} for path, reason in skipped],
    }


def _move_into_place(partial: Path, dst: Path) -> None:
    """Rename the finished folder to DST; an existing DST (--overwrite) is replaced only after that worked."""
    if not dst.exists():
        partial.rename(dst)
        return
    old = dst.parent / f".{dst.name}.replaced-{os.getpid()}"
    dst.rename(old)
    partial.rename(dst)
    shutil.rmtree(old)


def summary(meta: dict, dst: Path) -> str:
    """What prepare wrote and what it left out, for the terminal."""
    count, resolution, seconds = meta["num_images"], meta["resolution"], meta["seconds"]
    skipped = [(entry["file"], entry["reason"]) for entry in meta["skipped"]]
    total = count + len(skipped)
    mirror = "; training set mirrored at training time" if meta["mirror"] else ""
    lines = [f"wrote {count} image{'' if count == 1 else 's'} ({meta['test_count']} held out for testing{mirror}) at 4x4 .. "
             f"{resolution}x{resolution}, {meta['channels']} channel(s), to {dst} "
             f"in {seconds:.1f} s ({total / max(seconds, 0.001):.0f} files/s)"]
    if skipped:
        lines.append(describe_skipped(skipped, total))
    if meta["upscaled"]:
        lines.append(f"upscaled {meta['upscaled']} images smaller than {resolution}x{resolution}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_resolution(args.resolution, "--resolution")
        with stop_signals_raise_stopped():  # the partial folder is removed on SIGTERM too
            meta = prepare(args.src, args.dst, args.resolution, test_count=args.test_count, mirror=args.mirror,
                           grayscale=args.grayscale, overwrite=args.overwrite, verbose=not args.quiet)
    except ALAEError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); nothing was written to {args.dst}", file=sys.stderr)
        return interrupted_exit_code(exc)
    print(summary(meta, args.dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
