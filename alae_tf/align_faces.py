"""python -m alae_tf.align_faces: cut the faces out of photos as the face models' training images
were (serving.faces), for project, edit and the studio to read."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from alae_tf.data.files import open_image, unreadable_reason
from alae_tf.errors import ALAEError
from alae_tf.photo_command import add_photo_arguments, output_side, photos_and_names, run_photo_command
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
    add_photo_arguments(
        parser, "faces",
        out_help="folder for the aligned faces: PHOTO.png for each photo's largest face (a folder's photos keep their "
                 "paths below it); created if needed; existing files are replaced",
        size_help=f"the side of the squares in pixels, 4 to {MAX_SIDE} (default {DEFAULT_SIDE}, FFHQ's)")
    parser.add_argument("--crop", choices=sorted(CROPS), default="ffhq",
                        help="ffhq (default): the FFHQ and CelebA-HQ crop, for the official FFHQ and CelebA-HQ models "
                             "and runs trained on such images; celeba: the official CelebA 128x128 model's tighter crop")
    parser.add_argument("--all-faces", action="store_true",
                        help="every face found (PHOTO_face2.png, ... for the second largest on); default: the largest")
    return parser.parse_args(argv)


def align_photos(args) -> int:
    side = output_side(args, DEFAULT_SIDE, MAX_SIDE)
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
    return run_photo_command(align_photos, parse_args(argv), "faces")


if __name__ == "__main__":
    sys.exit(main())
