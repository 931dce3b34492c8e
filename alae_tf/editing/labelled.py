"""Labelled images to fit directions on, split into a training part and a held-out part:

- the run's own dataset when it has labels (MNIST, Fashion-MNIST: classes, their own test split);
- a folder per class (DIR/<class>/...image files): classes named by the folders;
- a table of binary attributes, > 0 meaning the image has it (-1/1 and 0/1 both work): a CSV
  (header `image,ATTR...`, rows `path,values`), or CelebA's own list (`list_attr_celeba.txt`,
  CelebAMask-HQ's `CelebAMask-HQ-attribute-anno.txt`: a line with the image count, a line of
  attribute names, rows `file values...` separated by spaces).

Folder and attribute-table images are decoded as training decodes image files (centre crop, resize to the
model's resolution, its channel count); every fifth image is held out (per class for folders), by its
place in the list. An unreadable file of a class folder is left out of its part with a warning; those
an attributes table names are one error naming them all (files that are no image are found from their
headers before any image is encoded; damaged pixels while reading, after which nothing more is encoded).

The labels come first (tasks are checked on them before any image is read); `Labelled.encoded`
then decodes and encodes the images a chunk at a time and keeps only their codes, so memory does not
grow with the number of images (30,000 at 1024x1024 are 94 GB of pixels, 123 MB of float64 codes).
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from alae_tf.data import open_run_images
from alae_tf.data.datasets import MNIST_FAMILY
from alae_tf.data.files import (SKIPPED_NAMES_SHOWN, describe_skipped, held_out_positions, list_image_files, load_square,
                                open_image, ordered_map, returning_errors, unreadable_reason)
from alae_tf.errors import DataError
from alae_tf.progress import progress_bar

FASHION_MNIST_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
HELD_OUT_EVERY = 5
CELEBA_LISTS = ("list_attr_celeba.txt", "CelebAMask-HQ-attribute-anno.txt")
CHUNK_PIXEL_BYTES = 64 * 2**20  # decoded images waiting for the encoder, at most (and at least one image)

Encode = Callable[[np.ndarray], np.ndarray]  # uint8 NHWC images -> their codes [n, latent]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """Codes of the readable labelled images: `train_codes[i]` is of training image `train_rows[i]`
    (a row of `Labelled.train_labels`), likewise for the held-out ones."""

    train_codes: np.ndarray
    train_rows: np.ndarray
    test_codes: np.ndarray
    test_rows: np.ndarray


@dataclass(frozen=True)
class Labelled:
    """Labels of images, training then held-out ones. Classes: labels are indices into `names`.
    Attributes (`attributes`): labels are booleans [N, len(names)]."""

    names: tuple[str, ...]
    train_labels: np.ndarray
    test_labels: np.ndarray
    attributes: bool
    description: str
    # encode -> (codes of the readable images, their places among the training then held-out images)
    encode_images: Callable[[Encode], tuple[np.ndarray, np.ndarray]] = field(repr=False)

    def encoded(self, encode: Encode) -> Encoded:
        codes, places = self.encode_images(encode)
        train = places < len(self.train_labels)
        return Encoded(codes[train], places[train], codes[~train], places[~train] - len(self.train_labels))


def open_run_data(config, path=None):
    """The run's dataset for held-out images and labels; a run that names no data directory (a model
    converted from the official code) is told what to use instead."""
    if path is None and config.data.path is None and config.data.dataset not in MNIST_FAMILY:
        raise DataError(f"the run's config names no directory for its {config.data.dataset} data (a model converted "
                        "from the official code records none): use image files or folders of your own instead of "
                        "held-out:, and --classes or --attributes to fit directions; or pass --data-path DIR (data prepared by "
                        "python -m alae_tf.data.prepare at the model's resolution), or set data.path in the run's config.yaml")
    return open_run_images(config, path=path)


def from_run_dataset(config, count: int | None = None, path: str | None = None) -> Labelled:
    """The labelled training images of the run's dataset (the first `count` of its fixed shuffled
    order, default all) and its held-out split (datasets with labels are MNIST's, small: read at once)."""
    resolution = config.model.image_shape[0]
    source = open_run_data(config, path=path)
    labels = source.train_sample_labels(count)
    if labels is None or source.test_labels is None:
        raise DataError(f"the run's dataset ({source.description}) has no labels; pass --classes DIR "
                        "(a folder per class) or --attributes FILE.csv")

    def encode_images(encode):
        train, test = source.train_images(resolution, count), source.test_images(resolution)
        return encode_stream(itertools.chain(train, test), len(train) + len(test), encode), np.arange(len(train) + len(test))

    return Labelled(dataset_class_names(config.data.dataset, source.train_labels), labels.astype(np.int64),
                    source.test_labels.astype(np.int64), False, source.description, encode_images)


def dataset_class_names(dataset: str, labels: np.ndarray) -> tuple[str, ...]:
    """Class names of a labelled dataset: Fashion-MNIST's item names, else the label numbers."""
    return FASHION_MNIST_CLASSES if dataset == "fashion_mnist" else tuple(str(k) for k in range(int(labels.max()) + 1))


def from_class_folders(root, image_shape, count: int | None = None) -> Labelled:
    """DIR/<class>/**/image files; class names are the folder names, sorted. `count`: at most
    that many images of each class (the first in file-name order)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory (expected one folder of images per class)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise DataError(f"{root}: found {len(folders)} class folder(s); directions need two or more (DIR/<class>/images)")
    parts = {"train": ([], []), "test": ([], [])}
    for index, folder in enumerate(folders):
        files = np.array(list_image_files(folder)[:count], dtype=object)
        if len(files) < 2:
            raise DataError(f"{folder}: {len(files)} image file(s); a class needs two or more (one is held out)")
        held_out = np.zeros(len(files), bool)
        held_out[held_out_positions(len(files), max(1, len(files) // HELD_OUT_EVERY))] = True
        for part, mask in (("train", ~held_out), ("test", held_out)):
            parts[part][0].extend(files[mask])
            parts[part][1].append(np.full(mask.sum(), index))
    files = parts["train"][0] + parts["test"][0]
    return Labelled(tuple(f.name for f in folders), np.concatenate(parts["train"][1]), np.concatenate(parts["test"][1]),
                    False, f"class folders {root}: {len(files)} images in {len(folders)} classes",
                    lambda encode: _encoded_files(files, image_shape, root, encode))


def from_attribute_table(path, image_dir, image_shape, count: int | None = None, only=None) -> Labelled:
    """An attributes CSV or CelebA attribute list (module docstring); image paths are relative to
    `image_dir` (default: the table's folder). `count`: the first that many rows only; `only`: these
    attribute columns only (the others, e.g. notes, are not read)."""
    path, given_image_dir = Path(path), image_dir
    image_dir = Path(image_dir) if image_dir else path.parent
    names, rows = read_attribute_table(path)
    rows = rows[:count]
    if len(rows) < 2:
        raise DataError(f"{path}: {len(rows)} image row(s); directions need two or more (one is held out)")
    if unknown := [name for name in only or () if name not in names]:
        raise DataError(f"{path}: no attribute {', '.join(map(repr, unknown))}; it has {', '.join(names)}")
    kept = [i for i, name in enumerate(names) if only is None or name in only]
    files = [image_dir / file for _, file, _ in rows]
    missing = [f for f in files if not f.is_file()]
    if missing:
        other_case = _names_in_other_case(missing)
        if all(math.isfinite(_as_number(file)) for _, file, _ in rows):  # a table without its image column
            fix = (f"its first column holds numbers ({rows[0][1]!r}, ...), not image paths: the image path is the "
                   "first column (header `image,ATTR...`)")
        elif other_case:
            table_name, file_name = other_case[0]
            fix = (f"{len(other_case)} of those names differ in letter case from the files: {table_name} vs {file_name}; "
                   "write the names in the table as the files are named (letter case counts)")
        elif len(missing) == len(files) and given_image_dir is None:
            fix = "pass --images DIR, the folder the table's image paths are relative to (default: its own folder)"
        elif len(missing) == len(files):
            fix = "pass as --images the folder the table's image paths are relative to"
        else:
            fix = "list only the images you have, or correct those paths"
        raise DataError(f"{path}: {len(missing)} of its {len(files)} image files not found in {image_dir}, e.g. "
                        f"{missing[0]}; {fix}")
    values, lines_of, fractions = [], {}, {}  # fractions: {attribute: (its smallest value in (0, 1), line, cell)}
    for number, file, cells in rows:
        if file in lines_of:
            raise DataError(f"{path}:{number}: image {file} is listed twice (first on line {lines_of[file]})")
        lines_of[file] = number
        row = [_attribute_value(path, number, names[i], cells[i]) for i in kept]
        for i, value in zip(kept, row):
            if 0 < value < fractions.get(names[i], (1,))[0]:
                fractions[names[i]] = (value, number, cells[i].strip())
        values.append([value > 0 for value in row])
    if fractions:  # probabilities, most likely, of which > 0 makes even 0.1 "has it"
        _, number, cell = min(fractions.values())
        print(f"note: {path}: values between 0 and 1 in {', '.join(fractions)} (e.g. {cell} on line {number}): every "
              f"value > 0 counts as having the attribute, {cell} too; if they are probabilities, write 1 (has it) or "
              "0 (has it not)", file=sys.stderr)
    held_out = np.zeros(len(files), bool)
    held_out[held_out_positions(len(files), max(1, len(files) // HELD_OUT_EVERY))] = True
    labels, files = np.array(values, bool), np.array(files, dtype=object)
    ordered = list(files[~held_out]) + list(files[held_out])
    return Labelled(tuple(names[i] for i in kept), labels[~held_out], labels[held_out], True,
                    f"attributes {path}: {len(files)} images, {len(kept)} attributes",
                    lambda encode: _encoded_files(ordered, image_shape, image_dir, encode, listed_in=path))


def _names_in_other_case(missing: list[Path]) -> list[tuple[str, str]]:
    """(name in the table, name of the file) of the missing files for which a file of the same name in
    another letter case exists in the same folder."""
    found, folders = [], {}
    for file in missing:
        if file.parent not in folders:
            try:
                names = [entry.name for entry in file.parent.iterdir()]
            except OSError:  # no such folder, or not readable: no names to compare
                names = []
            folders[file.parent] = {name.casefold(): name for name in names}
        if other := folders[file.parent].get(file.name.casefold()):
            found.append((file.name, other))
    return found


def _as_number(cell: str) -> float:
    """The cell's number; NaN when it holds none."""
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _attribute_value(path, number, name, cell) -> float:
    value = _as_number(cell)
    if not math.isfinite(value):
        raise DataError(f"{path}:{number}: attribute {name!r} is {cell.strip()!r}, not a number: attribute values "
                        "are numbers (> 0: has the attribute) and the image path is the first column (--only "
                        "picks attribute columns, and the others are not read)")
    return value


def read_attribute_table(path: Path) -> tuple[tuple[str, ...], list[tuple[int, str, list[str]]]]:
    """(attribute names, rows of (line number, image path, value cells)) of a CSV or of CelebA's
    list format, told apart by its first line: the image count alone."""
    if path.is_dir():
        tables = sorted(path.glob("*.csv")) + [path / name for name in CELEBA_LISTS if (path / name).is_file()]
        example = f"e.g. --attributes {tables[0]}" if tables else "header `image,ATTR...`"
        raise DataError(f"{path}: a folder, not a labels file; pass the labels CSV file itself ({example}), or --classes "
                        "for a folder with one subfolder of images per class")
    try:
        with open(path, newline="") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the attributes file ({exc})") from None
    celeba_list = bool(lines) and lines[0].strip().isdigit()
    if celeba_list:  # the count, the names, then `file v1 v2 ...` with any run of spaces between
        header = lines[1].split() if len(lines) > 1 else []
        table = [(number, line.split()) for number, line in enumerate(lines[2:], 3) if line.strip()]
    else:
        try:
            parsed = list(csv.reader(lines))
        except csv.Error as exc:
            raise DataError(f"{path}: cannot read the attributes CSV ({exc})") from None
        header = [name.strip() for name in parsed[0][1:]] if parsed else []
        table = [(number, row) for number, row in enumerate(parsed[1:], 2) if any(cell.strip() for cell in row)]
    width = len(header) + 1
    if repeated := sorted({name for name in header if header.count(name) > 1}):
        raise DataError(f"{path}: attribute(s) {', '.join(map(repr, repeated))} named twice in the header")
    if not header:
        raise DataError(f"{path}: expected a CSV with a header `image,ATTR...`, or CelebA's list "
                        "(a line with the image count, a line of attribute names, then `file values...`)")
    if "" in header:
        raise DataError(f"{path}: column {header.index('') + 2} of the header has no name (a trailing comma?): "
                        "name it or remove that column")
    if all(math.isfinite(_as_number(name)) for name in header):  # a file without its header line: its first row was taken for one
        raise DataError(f"{path}: the attribute names of its header line, {', '.join(header)}, are numbers: is the header "
                        "missing? The first line must name the columns, e.g. `image,smiling,young`")
    rows = []
    for number, cells in table:
        if len(cells) != width:
            raise DataError(f"{path}:{number}: {len(cells)} columns, expected {width} (the image and {len(header)} attributes)")
        rows.append((number, cells[0].strip(), cells[1:]))
    if celeba_list and int(lines[0]) != len(rows):
        logger.warning("%s: its first line says %s images, it lists %d", path, lines[0].strip(), len(rows))
    return tuple(header), rows


def _encoded_files(files: list[Path], image_shape, root: Path, encode: Encode, listed_in: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(codes of the readable files, their positions in `files`); unreadable files are skipped
    with a warning, or, when the table `listed_in` names them, refused in one error naming them all."""
    side, channels = image_shape[0], image_shape[2]
    refused = listed_in is not None
    # A file that is no image fails on its header, read before any image is encoded; a file whose
    # pixels are damaged fails only when decoded, in the read loop below.
    unreadable = _unreadable_headers(files) if refused else {}
    kept = []

    def readable():
        positions = [position for position in range(len(files)) if position not in unreadable]
        decoded = ordered_map(returning_errors(lambda position: load_square(files[position], side, channels)), positions)
        for position, image in zip(positions, decoded):
            if isinstance(image, Exception):
                unreadable[position] = unreadable_reason(image)
            elif not (refused and unreadable):  # once one is refused, the others are only decoded: to name every bad file
                kept.append(position)
                yield image

    codes = encode_stream(readable(), len(files), encode)
    named = [(_relative_name(files[position], root), reason) for position, reason in sorted(unreadable.items())]
    if refused and named:
        shown = "; ".join(f"{name} ({reason})" for name, reason in named[:SKIPPED_NAMES_SHOWN])
        more = f"; and {len(named) - SKIPPED_NAMES_SHOWN} more" if len(named) > SKIPPED_NAMES_SHOWN else ""
        raise DataError(f"{listed_in}: {len(named)} of its {len(files)} images cannot be read: {shown}{more}; "
                        "replace those files or remove their rows")
    if named:
        logger.warning("%s: %s", root, describe_skipped(named, len(files)))
    return codes, np.array(kept, np.int64)


def _relative_name(file, root: Path) -> str:
    """The file's path under `root`, or the whole path when it lies elsewhere (a table may list absolute paths)."""
    file = Path(file)
    return (file.relative_to(root) if file.is_relative_to(root) else file).as_posix()


def _unreadable_headers(files: list[Path]) -> dict[int, str]:
    """{position in `files`: why} of the files PIL cannot open as images. Opening reads the header only
    (`read_header` would not do: its EXIF look-up decodes a whole PNG)."""
    def open_only(path):
        with open_image(path):
            pass

    opened = ordered_map(returning_errors(open_only), files)
    return {position: unreadable_reason(error) for position, error in enumerate(opened) if isinstance(error, Exception)}


def encode_stream(images: Iterable[np.ndarray], count: int, encode: Encode) -> np.ndarray:
    """encode() of `images` (uint8 [H, W, C] each; `count` files, some perhaps skipped, are the
    progress bar's length), CHUNK_PIXEL_BYTES of them at a time; float64 [n, latent]."""
    progress = progress_bar(count, unit_name="image")
    codes, chunk = [], []

    def flush():
        codes.append(np.asarray(encode(np.stack(chunk)), np.float64))
        progress.add(len(chunk))
        chunk.clear()

    for image in images:
        chunk.append(image)
        if len(chunk) * image.nbytes >= CHUNK_PIXEL_BYTES:
            flush()
    if chunk:
        flush()
    if sum(map(len, codes)) < count:  # files were skipped: the bar still ends
        progress.update(count)
    return np.concatenate(codes) if codes else np.zeros((0, 0))
