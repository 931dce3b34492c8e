"""Stores: read image i of a dataset at one of its resolution levels, as uint8 [r, r, C].

Three kinds, one interface (`resolution`, `channels`, `read(ids, r)` for numpy, `tensor_reader(r)`
for tf.data, which takes a vector of ids when `reads_batches`): images held in memory, image files
decoded on every read, and TFRecords read by byte offset (so any image is one read away: shuffling
and resuming never scan the records before it).
`alae_tf.data.source.ImageSource` adds the train/test split and the training order on top.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from alae_tf.data.files import PREPARE_COMMAND, load_square, ordered_map, unreadable_reason
from alae_tf.data.pyramid import box_downsample, resolution_levels
from alae_tf.errors import DataError

RECORD_HEADER_BYTES = 12  # uint64 length + uint32 length CRC
RECORD_FOOTER_BYTES = 4  # uint32 data CRC


class ArrayStore:
    """Images held in memory as uint8 [N, R, R, C]."""

    reads_batches = True

    def __init__(self, images: np.ndarray):
        self._images = images
        self.resolution = images.shape[1]
        self.channels = images.shape[3]

    def read(self, ids: np.ndarray, resolution: int) -> np.ndarray:
        return box_downsample(self._images[ids], resolution)

    def tensor_reader(self, resolution: int) -> Callable:
        level = tf.constant(box_downsample(self._images, resolution))
        return lambda image_id: tf.gather(level, image_id)


class FileStore:
    """Base for stores that read one image at a time in Python (`read_one`)."""

    reads_batches = False
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

        def read_or_problem(image_id):
            try:
                return self.read_one(int(image_id), resolution), b""
            except DataError as error:
                return np.zeros(shape, np.uint8), f"DataError: {error}".encode()

        def read(image_id):
            # A DataError comes out as a value and fails an assertion: raised inside the
            # numpy_function, TensorFlow logged it with its Python stack from every reader thread
            # that met the file (six of them, ~200 lines) before the trainer's one error line.
            image, problem = tf.numpy_function(read_or_problem, [image_id], (tf.uint8, tf.string), stateful=False)
            with tf.control_dependencies([tf.debugging.Assert(tf.equal(problem, b""), [problem])]):
                return tf.ensure_shape(image, shape)

        return read


class FolderStore(FileStore):
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
                f"({unreadable_reason(error)}); put it back as it was (a run's folder cannot change: its "
                f"held-out split would), or train a new run on the folder as it is now"
            ) from None
        return box_downsample(image, resolution)


class RecordStore(FileStore):
    """Multi-resolution TFRecords: level r is read from its own files, else box-downsampled from the full one.
    `as_rgb`: grayscale records are read with the gray channel repeated three times (an RGB model's)."""

    def __init__(self, levels: dict[int, list[Path]], resolution: int, as_rgb: bool = False):
        self._levels = levels
        self._indexes: dict[int, RecordIndex] = {}
        self._lock = threading.Lock()
        self.resolution = resolution
        if len(self) == 0:
            shards = ", ".join(path.name for path in levels[self._source_level(resolution)])
            raise DataError(f"{shards}: no records; re-create the dataset with `{PREPARE_COMMAND}`")
        first, _ = self._record(self._source_level(resolution), 0)
        self.stored_channels = first.shape[2]
        self.channels = 3 if as_rgb else self.stored_channels

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
        image = box_downsample(image, resolution)
        return np.repeat(image, self.channels, axis=2) if image.shape[2] < self.channels else image

    def tensor_reader(self, resolution: int) -> Callable:
        self._index(self._source_level(resolution))  # build it here, not in the reading threads
        return super().tensor_reader(resolution)

    def _source_level(self, resolution: int) -> int:
        """The stored level r is read from: its own, else the full-resolution one (never a rounded in-between)."""
        if resolution in self._levels:
            return resolution
        return min(level for level in self._levels if level >= self.resolution)

    def _index(self, level: int) -> RecordIndex:
        with self._lock:
            if level not in self._indexes:
                self._indexes[level] = RecordIndex(self._levels[level])
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


class RecordIndex:
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
    """(data offset, data length) of every record in one shard."""
    size = shard.stat().st_size
    found = []
    with open(shard, "rb") as file:
        if file.read(2) == b"\x1f\x8b":
            raise DataError(f"{shard}: GZIP-compressed TFRecords cannot be read by offset; decompress them first")
        position = 0
        while position < size:
            file.seek(position)
            header = file.read(RECORD_HEADER_BYTES)
            length = int.from_bytes(header[:8], "little")
            end = position + RECORD_HEADER_BYTES + length + RECORD_FOOTER_BYTES
            if len(header) < RECORD_HEADER_BYTES or end > size:
                raise DataError(
                    f"{shard}: truncated or not a TFRecord file (record at byte {position} runs past the end); "
                    f"re-create it with `{PREPARE_COMMAND}`"
                )
            found.append((position + RECORD_HEADER_BYTES, length))
            position = end
    return found
