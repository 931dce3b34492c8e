"""python -m alae_tf.align_digits: photos of handwritten digits made into MNIST's images
(serving.digits), for project, edit and the studio to read."""

from __future__ import annotations

import argparse
import sys

from alae_tf.data.files import open_image, unreadable_reason
from alae_tf.errors import ALAEError
from alae_tf.photo_command import add_photo_arguments, output_side, photos_and_names, run_photo_command
from serving.atomic_write import replacing
from serving.command_line import CommandParser
from serving.digits import NO_DIGIT_HINT, mnist_digit
from serving.model_pixels import whole_pixels

DEFAULT_SIDE, MAX_SIDE = 28, 1024


def parse_args(argv=None) -> argparse.Namespace:
    parser = CommandParser(
        prog="python -m alae_tf.align_digits",
        description=(
            "Make photos or scans of handwritten digits (one digit each, dark on light paper or light on dark) into "
            "MNIST's images: light strokes on black, the digit scaled into MNIST's 20x20 box of 28x28 and centred by "
            "its centre of mass, the paper's shadows and grain taken away. A digit photo only centre-cropped and "
            "shrunk is unlike anything an MNIST model learned from. The images are written as PNG files to --out, "
            "for python -m alae_tf.project / .edit --images and the studio's upload (python -m serving.http --studio "
            "--align-digits frames uploads and drawings itself)."),
        epilog="example: python -m alae_tf.align_digits my_seven.jpg digits/ --out mnist_digits",
    )
    add_photo_arguments(
        parser, "digits",
        out_help="folder for the digits: PHOTO.png for each photo (a folder's photos keep their paths below it); "
                 "created if needed; existing files are replaced",
        size_help=f"the images' side in pixels, 4 to {MAX_SIDE} (default {DEFAULT_SIDE}, MNIST's)")
    return parser.parse_args(argv)


def align_photos(args) -> int:
    side = output_side(args, DEFAULT_SIDE, MAX_SIDE)
    if args.out.exists() and not args.out.is_dir():
        raise ALAEError(f"--out {args.out}: a file, not a folder")
    photos = photos_and_names(args.images, args.out, all_faces=False)
    written, blank, unreadable = 0, [], []
    for number, (photo, name) in enumerate(photos, 1):
        counter = f"[{number}/{len(photos)}]"
        try:
            with open_image(photo) as opened:
                image, _ = whole_pixels(opened, "L")
            digit = mnist_digit(image, side)
        except Exception as exc:  # a damaged file: named and skipped, as training skips
            print(f"{counter} warning: {photo}: skipped: {unreadable_reason(exc)}", file=sys.stderr)
            unreadable.append(photo)
            continue
        if digit is None:
            print(f"{counter} warning: {photo}: no digit found ({NO_DIGIT_HINT})", file=sys.stderr)
            blank.append(photo)
            continue
        target = args.out / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as partial:
            digit.save(partial, format="PNG")
        written += 1
        print(f"{counter} {photo} -> {target}", flush=True)
    print(f"{written} digit(s) of {side}x{side} written to {args.out}"
          + (f"; no digit found in {len(blank)} photo(s)" if blank else "")
          + (f"; {len(unreadable)} file(s) could not be read" if unreadable else ""))
    if not written:
        raise ALAEError("no digit was found in any of the photos")
    return 0


def main(argv=None) -> int:
    return run_photo_command(align_photos, parse_args(argv), "digits")


if __name__ == "__main__":
    sys.exit(main())
