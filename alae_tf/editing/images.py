"""The images an editing command works on, as uint8 NHWC at the model's image shape:

- image files, or folders of them (sorted, recursive); one of another size or colour mode is
  brought to the model's as training images are (`serving.model_pixels`: centre crop, LANCZOS
  resize, grayscale or RGB, alpha over black), and a note line on stderr says what was done;
- `held-out:SELECTION[:CLASS]`: images of the run's held-out split, SELECTION = N (the first N)
  or A-B (positions A..B-1), optionally only those of class CLASS (MNIST, Fashion-MNIST).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from alae_tf.data.files import describe_skipped, is_prepared_dataset, list_image_files, open_image, unreadable_reason
from alae_tf.editing.labelled import dataset_class_names, open_run_data
from alae_tf.errors import ALAEError
from alae_tf.run_dir import RunDir, data_change
from serving.model_pixels import model_pixels

HELD_OUT = re.compile(r"^held-out:(?:(?P<count>\d+)|(?P<first>\d+)-(?P<last>\d+))(?::(?P<label>[^:]+))?$")


def select_images(specs: list[str], config) -> np.ndarray:
    """uint8 [N, H, W, C] from image paths / `held-out:...` specs, in the order given."""
    images = np.concatenate(images_per_spec(specs, config))
    if not len(images):
        raise ALAEError(f"no images selected by {' '.join(specs)}")
    return images


def images_per_spec(specs: list[str], config) -> list[np.ndarray]:
    """One uint8 [N, H, W, C] per spec, in the order given."""
    held_out, source = _held_out_specs(specs, config)
    return [_held_out(spec, held_out[spec], source, config) if spec in held_out else read_image_files(spec, config.model.image_shape)
            for spec in specs]


def count_images(specs: list[str], config) -> int:
    """How many images `images_per_spec` gives, found without decoding any (a limit is checked
    before the work: a folder of 70,000 images at 1024x1024 would not fit in memory to be counted)."""
    held_out, source = _held_out_specs(specs, config)
    return sum(len(_held_out_positions(spec, held_out[spec], source, config)) if spec in held_out else len(_image_files(spec))
               for spec in specs)


def held_out_warning(specs: list[str], config, run_dir) -> str | None:
    """The warning for held-out:N specs of a run whose image folder or prepared data changed since it
    started (their split is drawn again from the data as it is now); None otherwise."""
    run = RunDir(run_dir)
    if not any(spec.startswith("held-out:") for spec in specs) or not run.data_file.is_file():  # MNIST records none
        return None
    if change := data_change(run, open_run_data(config)):
        return f"warning: {change}; held-out:N may select images the run trained on"
    return None


def _held_out_specs(specs, config):
    """({held-out spec: its match}, the run's data or None when no spec is one)."""
    held_out = {spec: _parse_held_out(spec) for spec in specs if spec.startswith("held-out:")}
    return held_out, open_run_data(config) if held_out else None  # opened once, after every spec has been checked


def _image_files(path) -> list[Path]:
    path = Path(path)
    if path.is_dir() and is_prepared_dataset(path):
        raise ALAEError(f"{path}: a prepared dataset (python -m alae_tf.data.prepare), not image files; train on it "
                        "(--dataset prepared), then held-out:N takes its held-out images, or pass its source folder")
    if path.is_dir():
        return list_image_files(path)
    if path.is_file():
        return [path]
    raise ALAEError(f"{path}: no such image file or folder (or use held-out:N for the run's held-out images)")


def read_image_files(path, image_shape) -> np.ndarray:
    """One image file, or every image file under a folder, as uint8 [N, H, W, C] of the model's shape.
    A file that cannot be read is an ALAEError when named alone; in a folder it is skipped with a
    warning line, as training skips it."""
    files = _image_files(path)
    height, width, channels = image_shape
    images, adjusted, skipped, cropped = [], [], [], False
    for file in files:
        try:
            with open_image(file) as image:
                size, mode = image.size, image.mode
                pixels, changes = model_pixels(image, image_shape)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ... for bad files
            if not Path(path).is_dir():
                raise ALAEError(f"{file}: cannot read the image ({unreadable_reason(exc)})") from None
            skipped.append((str(file.relative_to(path)), unreadable_reason(exc)))
            continue
        images.append(pixels)
        cropped = cropped or any(change.startswith("centre-cropped") for change in changes)
        if changes:
            adjusted.append(f"{file}: a {size[0]}x{size[1]} {mode} image, {', '.join(changes)}")
    if skipped:
        if not images:
            raise ALAEError(f"{path}: none of its {len(files)} image files can be read ({describe_skipped(skipped, len(files))})")
        print(f"warning: {path}: {describe_skipped(skipped, len(files))}", file=sys.stderr)
    # A photo cut to its centre: for a colour model maybe a face, which face models saw aligned; for
    # a grayscale one maybe a digit on paper, which MNIST models saw light on black, boxed and centred.
    faces = ("" if not cropped else
             "; face photos: python -m alae_tf.align_faces cuts faces out as face models saw them" if channels == 3 else
             "; photos of handwritten digits: python -m alae_tf.align_digits frames them as MNIST's")
    if len(adjusted) == 1 and len(files) == 1:
        print(f"note: {adjusted[0]}, as training images are{faces}", file=sys.stderr)
    elif adjusted:
        print(f"note: {path}: {len(adjusted)} of {len(images)} images brought to {width}x{height} "
              f"{'grayscale' if channels == 1 else 'RGB'} as training images are (first: {adjusted[0]}){faces}",
              file=sys.stderr)
    return np.stack(images) if images else np.empty((0, *image_shape), np.uint8)


def _parse_held_out(spec: str) -> re.Match:
    match = HELD_OUT.match(spec)
    if match is None:
        raise ALAEError(f"{spec!r}: expected held-out:N, held-out:A-B or either followed by :CLASS")
    first, last = _held_out_range(match)
    if not first < last:
        need = "N must be at least 1" if match["count"] else "A-B takes positions A..B-1, so B must be greater than A"
        raise ALAEError(f"{spec}: selects no images; {need}")
    return match


def _held_out_range(match: re.Match) -> tuple[int, int]:
    """[first, last) positions of a held-out spec."""
    return (0, int(match["count"])) if match["count"] else (int(match["first"]), int(match["last"]))


def _held_out(spec: str, match: re.Match, source, config) -> np.ndarray:
    positions = _held_out_positions(spec, match, source, config)
    if match["label"] is None:  # a range: read only those (FFHQ's 10,000 held-out images are 31 GB at 1024x1024)
        return np.asarray(source.test_rows(config.model.image_shape[0])[positions[0]:positions[-1] + 1])
    return source.test_images(config.model.image_shape[0])[positions]


def _held_out_positions(spec: str, match: re.Match, source, config) -> np.ndarray:
    positions = np.arange(source.num_test)
    if match["label"] is not None:
        if source.test_labels is None:
            raise ALAEError(f"{spec}: the run's dataset has no labels to select class {match['label']!r} by")
        names = list(dataset_class_names(config.data.dataset, source.test_labels))
        if match["label"] not in names:
            raise ALAEError(f"{spec}: unknown class {match['label']!r}; the classes are {', '.join(names)}")
        positions = positions[source.test_labels == names.index(match["label"])]
    first, last = _held_out_range(match)
    if last > len(positions):
        of_class = f" of class {match['label']}" if match["label"] is not None else ""
        raise ALAEError(f"{spec}: selects images {first}..{last - 1} of {len(positions)} held-out images{of_class}")
    return positions[first:last]
