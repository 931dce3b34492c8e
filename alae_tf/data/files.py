"""Image-file conventions shared by the folder source and the prepare tool, so both give the same images.

- which files count: png/jpg/jpeg/webp/bmp under a folder, hidden names skipped, ordered by
  relative path (`list_image_files`);
- how a file becomes pixels: `serving.model_pixels`, the one definition training, edit, the
  studio and the app API share (turned upright by its EXIF orientation, centre crop to square,
  alpha over black, PIL LANCZOS resize); unreadable files, and FIFOs, sockets or devices with an
  image name (reading one could block forever), are skipped and reported in one line;
- the held-out images: `test_count` evenly spaced positions of that order (`held_out_positions`;
  default min(1000, 10%));
- the TFRecord layout of StyleGAN / the official ALAE (`encode_record`, `record_file_name`).
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from alae_tf.errors import DataError
from alae_tf.levels import LOWEST_RESOLUTION
from serving.model_pixels import IMAGE_FORMATS, TURNED_SIDEWAYS, exif_orientation, model_pixels

logger = logging.getLogger(__name__)

# The project's commands read the user's own image files, of any size: Pillow's warning from 89
# megapixels on ("could be decompression bomb DOS attack", with a path into PIL) says nothing to act
# on. From 179 megapixels Pillow refuses to decode, and the file is skipped with that reason.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_EXTENSIONS = tuple(extension for extensions in IMAGE_FORMATS.values() for extension in extensions)
# Image files of other formats, named when a folder holds them rather than passed over unsaid.
OTHER_IMAGE_EXTENSIONS = (".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl")
PREPARE_COMMAND = "python -m alae_tf.data.prepare SRC DST --resolution R"
META_FILE = "meta.json"
RECORD_PREFIX = "images"
MAX_TEST_COUNT = 1000
PARALLEL_READS = min(8, os.cpu_count() or 1)
SKIPPED_NAMES_SHOWN = 5
# PIL modes that carry no colour; a folder whose images all have one of these is read as 1 channel.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class SpecialFile(OSError):
    """A FIFO, socket, device or directory named like an image file."""


def open_image(path: Path) -> Image.Image:
    """PIL's Image.open for regular files only (opening a FIFO would wait for a writer forever)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
                 stat.S_ISBLK: "a block device", stat.S_ISDIR: "a directory"}
        kind = next((name for test, name in kinds.items() if test(mode)), "special")
        raise SpecialFile(f"{kind}, not a regular file")
    return Image.open(path)


def list_image_files(root: Path) -> list[Path]:
    """Image files under `root` (recursive, into linked folders too, each folder once; hidden
    names skipped), sorted by relative path."""
    found, others, walked = [], [], set()
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        real = os.path.realpath(directory)
        if real in walked:  # a link back up the tree, or a second link to one folder
            subdirectories[:] = []
            continue
        walked.add(real)
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))  # links: first one wins
        found += [Path(directory, name) for name in names
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)]
        others += [name for name in names if not name.startswith(".") and name.lower().endswith(OTHER_IMAGE_EXTENSIONS)]
    not_read = _not_read_note(others)
    if not found:
        raise DataError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found in this folder or below"
                        + (f"; {not_read}" if not_read else ""))
    if not_read and (str(root), not_read) not in _NOTED:  # a command may list its folder more than once
        _NOTED.add((str(root), not_read))
        logger.warning("%s: %s", root, not_read)
    return sorted(found, key=lambda file: file.relative_to(root).as_posix())


_NOTED = set()


def _not_read_note(others: list[str]) -> str:
    if not others:
        return ""
    kinds = ", ".join(sorted({Path(name).suffix.lower() for name in others}))
    return f"{len(others)} image file(s) of other formats ({kinds}; e.g. {others[0]}) are not read: convert them to PNG to use them"


def default_test_count(count: int) -> int:
    return min(MAX_TEST_COUNT, count // 10)


def held_out_positions(count: int, test_count: int) -> np.ndarray:
    """Positions of `test_count` held-out images among `count`: evenly spread, (2j+1)*count // (2*test_count)."""
    if not 0 <= test_count < count:
        raise DataError(
            f"cannot hold out {test_count} of {count} images for testing; use a test count from 0 to {count - 1}"
        )
    j = np.arange(test_count, dtype=np.int64)
    return (2 * j + 1) * count // (2 * test_count) if test_count else j


class Header(NamedTuple):
    mode: str  # PIL's
    size: tuple[int, int]  # (width, height) upright
    turned: bool  # an EXIF orientation turns or mirrors the stored pixels
    transparent: bool  # an alpha channel or a transparency key (PNG tRNS, GIF): decoding composites it over black


def read_header(path: Path) -> Header:
    """What the file header says, without decoding the pixels."""
    with open_image(path) as image:
        orientation = exif_orientation(image)
        width, height = image.size
        size = (height, width) if orientation in TURNED_SIDEWAYS else (width, height)
        return Header(image.mode, size, orientation != 1, image.has_transparency_data)


def check_decodes(path: Path) -> tuple[str, tuple[int, int], bool]:
    """(mode, size, transparent) after running the training-time decode (`load_square`) at its cheapest: 4x4 RGB.

    That decodes the whole file (JPEGs at 1/8 scale, which still reads every byte), so truncated or
    corrupt files fail here rather than during training.
    """
    header = read_header(path)
    load_square(path, LOWEST_RESOLUTION, 3)
    return header.mode, header.size, header.transparent


def image_channels(modes: Iterable[str]) -> int:
    """1 if every PIL mode is a grayscale one, else 3."""
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3


def load_square(path: Path, resolution: int, channels: int) -> np.ndarray:
    """Decode one image file to uint8 [resolution, resolution, channels] (`serving.model_pixels`)."""
    with open_image(path) as image:
        return model_pixels(image, (resolution, resolution, channels))[0]


def encode_record(image: np.ndarray) -> bytes:
    """One uint8 HWC image as a serialized tf.train.Example in the StyleGAN/ALAE layout (CHW raw bytes)."""
    import tensorflow as tf  # (seconds to import: not for python -m alae_tf.data.prepare --help)

    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    return tf.train.Example(features=tf.train.Features(feature={
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()])),
    })).SerializeToString(deterministic=True)  # else the two features' order varies between processes


def record_file_name(resolution: int) -> str:
    return f"{RECORD_PREFIX}-r{resolution.bit_length() - 1:02d}.tfrecords"


def is_prepared_dataset(path: Path) -> bool:
    """Whether folder `path` holds a dataset python -m alae_tf.data.prepare wrote (its meta.json and records)."""
    return (path / META_FILE).is_file() and any(path.glob(f"{RECORD_PREFIX}-r[0-9][0-9].tfrecords"))


def ordered_map(function: Callable, items: Iterable, workers: int = PARALLEL_READS) -> Iterator:
    """function(item) for each item, in order, computed by `workers` threads with a bounded queue.

    PIL releases the GIL while decoding and resizing, so threads scale with cores.
    """
    with ThreadPoolExecutor(workers) as executor:
        pending = deque()
        for item in items:
            pending.append(executor.submit(function, item))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def returning_errors(function: Callable) -> Callable:
    """function, returning the exception instead of raising it (one bad file must not stop a scan)."""
    def attempt(*args):
        try:
            return function(*args)
        except Exception as error:  # PIL plugins raise OSError, SyntaxError, ValueError, zlib.error, ...
            return error
    return attempt


def unreadable_reason(error: Exception) -> str:
    """A short reason for a skipped file (the file's name is reported next to it)."""
    if isinstance(error, UnidentifiedImageError):
        return "not a recognised image format"
    if isinstance(error, SpecialFile):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def describe_skipped(skipped: list[tuple[str, str]], total: int) -> str:
    """One line: how many of `total` files were skipped, with the first few names and reasons."""
    shown = "; ".join(f"{name} ({reason})" for name, reason in skipped[:SKIPPED_NAMES_SHOWN])
    more = f"; and {len(skipped) - SKIPPED_NAMES_SHOWN} more" if len(skipped) > SKIPPED_NAMES_SHOWN else ""
    return f"skipped {len(skipped)} of {total} image files that cannot be read: {shown}{more}"
