"""Image sources for StyleALAE: MNIST-family arrays, image folders and multi-resolution TFRecords.

`open_image_source` returns one `ImageSource` whatever the data is:

- "mnist" / "fashion_mnist": the MNIST-format splits from `alae_tf.data.mnist`, zero-padded 28 -> 32
  (2 black pixels each side, as the official ALAE's 32x32 MNIST); labels kept; own test split.
- "folder": a directory tree of png/jpg/jpeg/webp/bmp files decoded at training time with
  `load_square` (centre crop to square, PIL LANCZOS resize, alpha composited over black).
- "prepared": the output of `python -m alae_tf.data.prepare`, or TFRecords in the StyleGAN / official
  ALAE multi-resolution layout (`*-rNN.tfrecords[.PPP]`, NN = log2 of the side, features `shape`
  int64 [C, H, W] and `data` raw uint8 CHW). Records are read by byte offset, so any image is one
  read away: shuffling and resuming never scan the records before it.

Conventions shared by every source (and by the prepare tool, so folder and prepared data agree):
- lower resolutions are box-filter downsamples of the full-resolution image: each pixel is the mean
  of its block, rounded half to even (`box_downsample`; StyleGAN's dataset_tool rounds the same way);
- file-backed data is ordered by relative path (`list_image_files`) and holds out `test_count`
  evenly spaced images of that order (`held_out_positions`; default min(1000, 10%));
- epoch e of `train_dataset` is a stateless shuffle seeded by (seed, e), so element k of training is
  a pure function of (data, seed, k) and a resumed run continues the same stream.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from alae_tf.data.mnist import load_mnist
from alae_tf.data.pipeline import without_autotune
from alae_tf.errors import ConfigError, DataError

DATASETS = ("mnist", "fashion_mnist", "folder", "prepared")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MIN_RESOLUTION = 4
MNIST_PADDED_SIDE = 32
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"
PREPARE_COMMAND = "python -m alae_tf.data.prepare SRC DST --resolution R"
META_FILE = "meta.json"
RECORD_PREFIX = "images"
MAX_TEST_COUNT = 1000
REFERENCE_ORDER_SEED = 20200417  # fixes the order train_images() returns (FID reference sets)
PARALLEL_READS = min(8, os.cpu_count() or 1)
PREFETCH_IMAGES = 16
SKIPPED_NAMES_SHOWN = 5
# PIL modes that carry no colour; a folder whose images all have one of these is read as 1 channel.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

logger = logging.getLogger(__name__)


class ImageSource:
    """Training and held-out images of one dataset at every power-of-two resolution up to `resolution`.

    Backed by a store (in-memory array, image files or TFRecords) that reads image i at resolution r;
    this class adds the train/test split, optional mirrored copies and the seeded training order.
    """

    def __init__(self, store, *, description: str, train_ids: np.ndarray, test_ids: np.ndarray,
                 mirror: bool = False, train_labels: np.ndarray | None = None,
                 test_labels: np.ndarray | None = None, skipped: tuple[tuple[str, str], ...] = ()):
        self._store = store
        self._train_ids = np.asarray(train_ids, dtype=np.int64)
        self._test_ids = np.asarray(test_ids, dtype=np.int64)
        self._mirror = mirror
        self.description = description
        self.channels: int = store.channels
        self.resolution: int = store.resolution
        self.num_train: int = len(self._train_ids) * (2 if mirror else 1)
        self.num_test: int = len(self._test_ids)
        self.train_labels = None if train_labels is None else np.tile(train_labels, 2 if mirror else 1)
        self.test_labels = test_labels
        self.skipped = skipped  # (file name, reason) of every unreadable file left out

    def train_dataset(self, resolution: int, *, seed: int, start_index: int = 0) -> tf.data.Dataset:
        """Endless dataset of uint8 [r, r, C] training images, from element `start_index` of the stream.

        Epoch e visits every training image once, in a shuffle seeded by (seed, e). Starting at
        `start_index` slices the first epoch's index order; no image before it is read.
        """
        self._check_level(resolution)
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        count, stored = self.num_train, len(self._train_ids)
        read = self._store.tensor_reader(resolution)
        ids = tf.constant(self._train_ids)
        first_epoch, offset = divmod(start_index, count)

        def epoch_order(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order[tf.where(epoch == first_epoch, offset, 0):])

        def image(virtual_id):
            picture = read(tf.gather(ids, virtual_id % stored))
            if self._mirror:  # ids past the stored count are the mirrored copies
                picture = tf.where(virtual_id >= stored, tf.reverse(picture, axis=[1]), picture)
            return picture

        dataset = (
            tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
            .flat_map(epoch_order)
            .map(image, num_parallel_calls=PARALLEL_READS, deterministic=True)
            .prefetch(PREFETCH_IMAGES)
        )
        return without_autotune(dataset)  # PARALLEL_READS and PREFETCH_IMAGES are fixed, not autotuned

    def test_images(self, resolution: int, count: int | None = None) -> np.ndarray:
        """The first `count` held-out images (all when None), uint8 [n, r, r, C], always in the same order."""
        self._check_level(resolution)
        return self._store.read(self._test_ids[:count], resolution)

    def train_images(self, resolution: int, count: int | None = None) -> np.ndarray:
        """The first `count` training images of a fixed shuffled order (a uniform sample, e.g. for FID)."""
        self._check_level(resolution)
        order = self._reference_order(count)
        stored = len(self._train_ids)
        images = self._store.read(self._train_ids[order % stored], resolution)
        mirrored = order >= stored
        images[mirrored] = images[mirrored, :, ::-1]
        return images

    def train_sample_labels(self, count: int | None = None) -> np.ndarray | None:
        """The labels of `train_images(resolution, count)`, in the same order (None without labels)."""
        if self.train_labels is None:
            return None
        return self.train_labels[self._reference_order(count)]

    def _reference_order(self, count: int | None) -> np.ndarray:
        return np.random.default_rng(REFERENCE_ORDER_SEED).permutation(self.num_train)[:count]

    def _check_level(self, resolution: int) -> None:
        if resolution not in resolution_levels(self.resolution):
            raise ValueError(
                f"resolution {resolution} is not a power of two from {MIN_RESOLUTION} to {self.resolution}"
            )


def open_image_source(dataset: str, path: str | None, resolution: int, *, mnist_source: str = "auto",
                      test_count: int | None = None) -> ImageSource:
    """Open `dataset` ("mnist", "fashion_mnist", "folder" or "prepared") for training at `resolution`.

    path: MNIST data path (see `load_mnist`), Fashion-MNIST IDX directory (default
    /usr/share/datasets/fashion-mnist), image folder, or prepared/TFRecord directory.
    test_count: images held out from folder/prepared data (default: prepare's choice, else
    min(1000, 10%)); MNIST-family data uses its own test split. Raises DataError/ConfigError.
    """
    check_resolution(resolution)
    if dataset in ("mnist", "fashion_mnist"):
        if test_count is not None:
            raise ConfigError(f"{dataset} has its own test split; test_count applies to folder/prepared data only")
        return _open_mnist_family(dataset, path, resolution, mnist_source)
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if path is None:
        raise DataError(f"dataset {dataset!r} needs a directory; pass --data-path DIR")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory; check --data-path")
    if dataset == "folder":
        return _open_folder(directory, resolution, test_count)
    return _open_records(directory, resolution, test_count)


# --- shared conventions ----------------------------------------------------------------------


def check_resolution(resolution: int) -> int:
    """`resolution` if it is a power of two >= 4, else ConfigError."""
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ConfigError(f"resolution must be a power of two >= {MIN_RESOLUTION} (4, 8, 16, ...), got {resolution}")
    return resolution


def resolution_levels(resolution: int) -> list[int]:
    """[4, 8, ..., resolution]: the levels progressive growing trains at."""
    return [1 << k for k in range(2, resolution.bit_length())]


def box_downsample(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [..., R, R, C] -> [..., r, r, C]: each pixel the mean of its (R/r)^2 block, rounded half to even.

    Equal to repeated 2x2 means of the float image followed by one rounding (exact: integer sums).
    """
    return box_pyramid(images, resolution)[resolution]


def box_pyramid(images: np.ndarray, lowest: int = MIN_RESOLUTION) -> dict[int, np.ndarray]:
    """{r: box_downsample(images, r)} for r = R, R/2, ..., lowest, from one chain of integer 2x2 block sums."""
    side = images.shape[-2]
    levels, sums = {side: images}, images
    while side > lowest:
        sums = sums[..., 0::2, 0::2, :].astype(np.uint32) + sums[..., 1::2, 0::2, :] \
            + sums[..., 0::2, 1::2, :] + sums[..., 1::2, 1::2, :]
        side //= 2
        levels[side] = np.rint(sums / (images.shape[-2] // side) ** 2).astype(np.uint8)
    return levels


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


def list_image_files(root: Path) -> list[Path]:
    """Image files under `root` (recursive, hidden names skipped), sorted by relative path."""
    found = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [Path(directory, name) for name in names
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)]
    if not found:
        raise DataError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found in this folder or below")
    return sorted(found, key=lambda file: file.relative_to(root).as_posix())


def read_header(path: Path) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (width, height)) from the file header, without decoding the pixels."""
    with Image.open(path) as image:
        return image.mode, image.size


def check_decodes(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, size) after running the training-time decode (`load_square`) at its cheapest: 4x4 RGB.

    That decodes the whole file (JPEGs at 1/8 scale, which still reads every byte), so truncated or
    corrupt files fail here rather than during training.
    """
    mode, size = read_header(path)
    load_square(path, MIN_RESOLUTION, 3)
    return mode, size


def image_channels(modes: Iterable[str]) -> int:
    """1 if every PIL mode is a grayscale one, else 3."""
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3


def load_square(path: Path, resolution: int, channels: int) -> np.ndarray:
    """Decode one image file to uint8 [resolution, resolution, channels].

    Centre crop to a square (the larger side loses (larger - smaller) // 2 pixels at its start), then
    PIL LANCZOS resize (antialiased when shrinking; smaller images are upscaled). JPEGs are decoded at
    the smallest DCT scale that keeps the crop >= resolution. Alpha is composited over black.
    """
    with Image.open(path) as image:
        width, height = image.size
        side = min(width, height)
        if side > resolution:
            image.draft("L" if channels == 1 else "RGB",
                        (math.ceil(width * resolution / side), math.ceil(height * resolution / side)))
        image = _flatten(image, channels)
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    pixels = np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS))
    return pixels[..., np.newaxis] if channels == 1 else pixels


def encode_record(image: np.ndarray) -> bytes:
    """One uint8 HWC image as a serialized tf.train.Example in the StyleGAN/ALAE layout (CHW raw bytes)."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    return tf.train.Example(features=tf.train.Features(feature={
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()])),
    })).SerializeToString()


def record_file_name(resolution: int) -> str:
    return f"{RECORD_PREFIX}-r{resolution.bit_length() - 1:02d}.tfrecords"


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


def describe_skipped(skipped: list[tuple[str, str]], total: int) -> str:
    """One line: how many of `total` files were skipped, with the first few names and reasons."""
    shown = "; ".join(f"{name} ({reason})" for name, reason in skipped[:SKIPPED_NAMES_SHOWN])
    more = f"; and {len(skipped) - SKIPPED_NAMES_SHOWN} more" if len(skipped) > SKIPPED_NAMES_SHOWN else ""
    return f"skipped {len(skipped)} of {total} image files that cannot be read: {shown}{more}"


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
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _flatten(image: Image.Image, channels: int) -> Image.Image:
    """The image as 8-bit "L" or "RGB": 16-bit gray scaled down, transparency composited over black."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    elif image.has_transparency_data:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB")


# --- stores: image i at resolution r -----------------------------------------------------------


class _ArrayStore:
    """Images held in memory as uint8 [N, R, R, C]."""

    def __init__(self, images: np.ndarray):
        self._images = images
        self.resolution = images.shape[1]
        self.channels = images.shape[3]

    def read(self, ids: np.ndarray, resolution: int) -> np.ndarray:
        return box_downsample(self._images[ids], resolution)

    def tensor_reader(self, resolution: int) -> Callable:
        level = tf.constant(box_downsample(self._images, resolution))
        return lambda image_id: tf.gather(level, image_id)


class _FileStore:
    """Base for stores that read one image at a time in Python (`read_one`)."""

    resolution: int
    channels: int

    def read_one(self, image_id: int, resolution: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, ids: np.ndarray, resolution: int) -> np.ndarray:
        images = np.empty((len(ids), resolution, resolution, self.channels), dtype=np.uint8)
        for row, image in enumerate(ordered_map(lambda i: self.read_one(int(i), resolution), ids)):
            images[row] = image
        return images

    def tensor_reader(self, resolution: int) -> Callable:
        shape = (resolution, resolution, self.channels)

        def read(image_id):
            image = tf.numpy_function(lambda i: self.read_one(int(i), resolution), [image_id], tf.uint8,
                                      stateful=False)
            return tf.ensure_shape(image, shape)

        return read


class _FolderStore(_FileStore):
    """Image files decoded on every read with `load_square`."""

    def __init__(self, files: list[Path], resolution: int, channels: int):
        self._files = files
        self.resolution = resolution
        self.channels = channels

    def read_one(self, image_id: int, resolution: int) -> np.ndarray:
        path = self._files[image_id]
        try:
            image = load_square(path, self.resolution, self.channels)
        except Exception as error:  # PIL plugins raise many types; the file changed since it was checked
            raise DataError(
                f"{path}: could not be decoded although it was readable when the dataset was opened "
                f"({unreadable_reason(error)}); restore or delete it and restart"
            ) from None
        return box_downsample(image, resolution)


class _RecordIndex:
    """Byte offsets of the records in uncompressed TFRecord shards, for random access.

    A record is: uint64 length, uint32 length CRC, `length` bytes of data, uint32 data CRC.
    Building the index reads 12 bytes per record; CRCs are not checked.
    """

    def __init__(self, shards: list[Path]):
        self._shards = shards
        self._locations: list[tuple[int, int, int]] = []  # (shard, data offset, data length)
        for number, shard in enumerate(shards):
            self._locations += [(number, offset, length) for offset, length in _scan_records(shard)]

    def __len__(self) -> int:
        return len(self._locations)

    def read(self, record_id: int) -> tuple[bytes, Path]:
        number, offset, length = self._locations[record_id]
        with open(self._shards[number], "rb") as file:
            file.seek(offset)
            return file.read(length), self._shards[number]


def _scan_records(shard: Path) -> list[tuple[int, int]]:
    size = shard.stat().st_size
    found = []
    with open(shard, "rb") as file:
        if file.read(2) == b"\x1f\x8b":
            raise DataError(f"{shard}: GZIP-compressed TFRecords cannot be read by offset; decompress them first")
        position = 0
        while position < size:
            file.seek(position)
            header = file.read(12)
            length = int.from_bytes(header[:8], "little")
            end = position + 12 + length + 4
            if len(header) < 12 or end > size:
                raise DataError(
                    f"{shard}: truncated or not a TFRecord file (record at byte {position} runs past the end); "
                    f"re-create it with `{PREPARE_COMMAND}`"
                )
            found.append((position + 12, length))
            position = end
    return found


class _RecordStore(_FileStore):
    """Multi-resolution TFRecords: level r is read from its own files, else box-downsampled from the full one."""

    def __init__(self, levels: dict[int, list[Path]], resolution: int):
        self._levels = levels
        self._indexes: dict[int, _RecordIndex] = {}
        self._lock = threading.Lock()
        self.resolution = resolution
        if len(self) == 0:
            shards = ", ".join(path.name for path in levels[self._source_level(resolution)])
            raise DataError(f"{shards}: no records; re-create the dataset with `{PREPARE_COMMAND}`")
        first, _ = self._record(self._source_level(resolution), 0)
        self.channels = first.shape[2]

    def __len__(self) -> int:
        return len(self._index(self._source_level(self.resolution)))

    def check_levels(self) -> None:
        """Every level used from `resolution` down holds the same number of records."""
        counts = {level: len(self._index(self._source_level(level))) for level in resolution_levels(self.resolution)}
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{level}x{level}: {count}" for level, count in counts.items())
            raise DataError(f"the resolution levels hold different numbers of records ({listing}); "
                            f"some files are incomplete; re-create them with `{PREPARE_COMMAND}`")

    def read_one(self, image_id: int, resolution: int) -> np.ndarray:
        image, _ = self._record(self._source_level(resolution), image_id)
        return box_downsample(image, resolution)

    def tensor_reader(self, resolution: int) -> Callable:
        self._index(self._source_level(resolution))  # build it here, not in the reading threads
        return super().tensor_reader(resolution)

    def _source_level(self, resolution: int) -> int:
        """The stored level r is read from: its own, else the full-resolution one (never a rounded in-between)."""
        if resolution in self._levels:
            return resolution
        return min(level for level in self._levels if level >= self.resolution)

    def _index(self, level: int) -> _RecordIndex:
        with self._lock:
            if level not in self._indexes:
                self._indexes[level] = _RecordIndex(self._levels[level])
            return self._indexes[level]

    def _record(self, level: int, record_id: int) -> tuple[np.ndarray, Path]:
        raw, shard = self._index(level).read(record_id)
        try:
            feature = tf.train.Example.FromString(raw).features.feature
            shape = tuple(feature["shape"].int64_list.value)
            data = feature["data"].bytes_list.value[0]
            image = np.frombuffer(data, dtype=np.uint8).reshape(shape).transpose(1, 2, 0)
        except Exception as error:  # protobuf decode errors, missing features, size mismatch
            raise DataError(
                f"{shard}: record {record_id} is not an image record with 'shape' [C, H, W] and raw uint8 "
                f"'data' ({unreadable_reason(error)})"
            ) from None
        if image.shape[:2] != (level, level) or image.shape[2] not in (1, 3):
            raise DataError(f"{shard}: record {record_id} has shape {list(shape)}, expected [1 or 3, {level}, {level}]")
        return image, shard


# --- opening each kind of dataset --------------------------------------------------------------


def _open_mnist_family(dataset: str, path: str | None, resolution: int, mnist_source: str) -> ImageSource:
    if resolution > MNIST_PADDED_SIDE:
        raise DataError(f"{dataset} images are {MNIST_PADDED_SIDE}x{MNIST_PADDED_SIDE} after padding; "
                        f"use a resolution of {MNIST_PADDED_SIDE} or less, not {resolution}")
    if dataset == "mnist":
        splits, name = load_mnist(mnist_source, path), "MNIST"
    else:
        splits, name = _load_fashion_mnist(path), "Fashion-MNIST"
    train, test = (_pad_to_32(images) for images in (splits.train_images, splits.test_images))
    store = _ArrayStore(box_downsample(np.concatenate([train, test]), resolution))
    train_ids = np.arange(len(train))
    return ImageSource(
        store, description=f"{name} ({splits.source}) padded to 32x32" + _at(resolution, MNIST_PADDED_SIDE),
        train_ids=train_ids, test_ids=len(train) + np.arange(len(test)),
        train_labels=splits.train_labels, test_labels=splits.test_labels,
    )


def _load_fashion_mnist(path: str | None):
    if path is None and not FASHION_MNIST_DIR.is_dir():
        raise DataError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}; install it with `{FASHION_MNIST_INSTALL}` "
            "or pass --data-path DIR with the Fashion-MNIST IDX files"
        )
    return load_mnist("idx", FASHION_MNIST_DIR if path is None else path)


def _pad_to_32(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> [N, 32, 32, 1] with a 2-pixel black border."""
    return np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., np.newaxis]


def _at(resolution: int, native: int) -> str:
    return "" if resolution == native else f", box-downsampled to {resolution}x{resolution}"


def _open_folder(root: Path, resolution: int, test_count: int | None) -> ImageSource:
    files = list_image_files(root)
    readable, modes, skipped, upscaled = [], [], [], 0
    for path, checked in zip(files, ordered_map(returning_errors(check_decodes), files)):
        if isinstance(checked, Exception):
            skipped.append((path.relative_to(root).as_posix(), unreadable_reason(checked)))
            continue
        mode, size = checked
        readable.append(path)
        modes.append(mode)
        upscaled += min(size) < resolution
    _report(skipped, upscaled, len(files), resolution, root)
    if not readable:
        raise DataError(f"{root}: none of the {len(files)} image files can be read")
    store = _FolderStore(readable, resolution, image_channels(modes))
    test_count = default_test_count(len(readable)) if test_count is None else test_count
    test_ids = held_out_positions(len(readable), test_count)
    kind = "grayscale" if store.channels == 1 else "RGB"
    description = (f"image folder {root}: {len(readable)} images ({test_count} held out"
                   f"{f', {len(skipped)} unreadable skipped' if skipped else ''}) at "
                   f"{resolution}x{resolution} {kind}")
    return ImageSource(store, description=description, train_ids=_complement(test_ids, len(readable)),
                       test_ids=test_ids, skipped=tuple(skipped))


def _report(skipped: list, upscaled: int, total: int, resolution: int, root: Path) -> None:
    if skipped:
        logger.warning("%s: %s", root, describe_skipped(skipped, total))
    if upscaled:
        logger.warning("%s: %d images are smaller than %dx%d and are upscaled", root, upscaled, resolution, resolution)


def _complement(ids: np.ndarray, count: int) -> np.ndarray:
    keep = np.ones(count, dtype=bool)
    keep[ids] = False
    return np.flatnonzero(keep)


def _open_records(directory: Path, resolution: int, test_count: int | None) -> ImageSource:
    levels = _find_record_levels(directory)
    meta = _read_meta(directory)
    if resolution > max(levels):
        raise DataError(f"{directory}: the data goes up to {max(levels)}x{max(levels)}; "
                        f"it cannot be used at {resolution}x{resolution}")
    store = _RecordStore(levels, resolution)
    store.check_levels()
    count = len(store)
    if meta is not None and meta["num_images"] != count:
        raise DataError(f"{directory}: {META_FILE} lists {meta['num_images']} images but the records hold {count}; "
                        f"the dataset is incomplete; re-create it with `{PREPARE_COMMAND}`")
    if test_count is None:
        test_count = meta["test_count"] if meta else default_test_count(count)
    test_ids = held_out_positions(count, test_count)
    mirror = bool(meta and meta["mirror"])
    origin = f"prepared from {meta['source']}" if meta else "StyleGAN/ALAE TFRecords"
    kind = "grayscale" if store.channels == 1 else "RGB"
    description = (f"{directory} ({origin}, up to {max(levels)}x{max(levels)}): {count} images "
                   f"({test_count} held out{', training set mirrored' if mirror else ''}) "
                   f"at {resolution}x{resolution} {kind}")
    return ImageSource(store, description=description, train_ids=_complement(test_ids, count),
                       test_ids=test_ids, mirror=mirror)


def _find_record_levels(directory: Path) -> dict[int, list[Path]]:
    """{side: shard files} from names like `name-r08.tfrecords` or `name-r08.tfrecords.003`."""
    levels: dict[int, list[Path]] = {}
    for path in sorted(directory.glob("*-r[0-9][0-9].tfrecords*")):
        stem, _, _ = path.name.partition(".tfrecords")
        levels.setdefault(1 << int(stem[-2:]), []).append(path)
    if not levels:
        raise DataError(
            f"{directory}: no TFRecord files (*-rNN.tfrecords) here; create a prepared dataset with "
            f"`{PREPARE_COMMAND}`, or use --dataset folder to read the images directly"
        )
    return levels


def _read_meta(directory: Path) -> dict | None:
    path = directory / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        _ = meta["num_images"], meta["test_count"], meta["mirror"], meta["source"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: unreadable or incomplete ({unreadable_reason(error)}); "
                        f"re-create the dataset with `{PREPARE_COMMAND}`") from None
    return meta
