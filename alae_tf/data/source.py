"""`ImageSource`: one dataset's training and held-out images at every resolution level, in a seeded order.

Whatever backs it (arrays in memory, image files, TFRecords: `alae_tf.data.stores`), a source gives
images as uint8 NHWC at any level of its side (`alae_tf.data.pyramid.resolution_levels`), and an
endless training stream in which epoch e is a stateless shuffle seeded by (seed, e): element k is a
pure function of (data, seed, k), so a resumed run continues the same stream.
`alae_tf.data.datasets.open_image_source` opens one by dataset name.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from alae_tf.data.batches import without_autotune
from alae_tf.data.files import PARALLEL_READS
from alae_tf.data.pyramid import resolution_levels
from alae_tf.data.stores import ArrayStore
from alae_tf.errors import DataError
from alae_tf.levels import LOWEST_RESOLUTION

PREFETCH_IMAGES = 16
REFERENCE_ORDER_SEED = 20200417  # fixes the order train_images() returns (FID reference sets)


class ImageSource:
    """Training and held-out images of one dataset at every resolution level up to `resolution`.

    Backed by a store that reads image i at resolution r; this class adds the train/test split,
    optional mirrored copies and the seeded training order.
    """

    def __init__(self, store, *, description: str, train_ids: np.ndarray, test_ids: np.ndarray,
                 mirror: bool = False, train_labels: np.ndarray | None = None,
                 test_labels: np.ndarray | None = None, skipped: tuple[tuple[str, str], ...] = (),
                 contents: str | None = None):
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
        # An image folder's fingerprint (its images' names and the held-out count): the split and
        # the training order follow the list, so a run notices when the folder changed under it.
        self.contents = contents

    @classmethod
    def from_arrays(cls, train_images, test_images=None, *, train_labels=None, test_labels=None,
                    description: str = "arrays") -> ImageSource:
        """A source over uint8 arrays [N, R, R] or [N, R, R, C] (C = 1 or 3, R >= 4); no test images when None."""
        train = _square_images(train_images, "train_images")
        test = train[:0] if test_images is None else _square_images(test_images, "test_images")
        if len(train) == 0:
            raise DataError("train_images: no images")
        if test.shape[1:] != train.shape[1:]:
            raise DataError(f"test_images are {list(test.shape[1:])} but train_images {list(train.shape[1:])}")
        return cls(
            ArrayStore(np.concatenate([train, test])), description=description,
            train_ids=np.arange(len(train)), test_ids=len(train) + np.arange(len(test)),
            train_labels=_labels(train_labels, len(train), "train_labels"),
            test_labels=_labels(test_labels, len(test), "test_labels"),
        )

    def train_dataset(self, resolution: int, *, seed: int, start_index: int = 0,
                      batch_size: int | None = None) -> tf.data.Dataset:
        """Endless dataset of uint8 [r, r, C] training images, from element `start_index` of the stream;
        with `batch_size`, of [batch_size, r, r, C] batches of consecutive elements.

        Epoch e visits every training image once, in a shuffle seeded by (seed, e). Starting at
        `start_index` slices the first epoch's index order; no image before it is read.
        """
        self._check_level(resolution)
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        order, read = self._training_order(seed, start_index), self._image_reader(resolution)
        if batch_size is not None and self._store.reads_batches:  # one gather per batch, not a map call per image
            return without_autotune(order.batch(batch_size, drop_remainder=True).map(read))
        images = order.map(read, num_parallel_calls=PARALLEL_READS, deterministic=True).prefetch(PREFETCH_IMAGES)
        if batch_size is not None:
            images = images.batch(batch_size, drop_remainder=True)
        return without_autotune(images)  # PARALLEL_READS and PREFETCH_IMAGES are fixed, not autotuned

    def _training_order(self, seed: int, start_index: int) -> tf.data.Dataset:
        """Endless training ids from element `start_index` on; ids past the stored count are mirrored copies."""
        count = self.num_train
        first_epoch, offset = divmod(start_index, count)

        def epoch_order(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order[tf.where(epoch == first_epoch, offset, 0):])

        return tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_order)

    def _image_reader(self, resolution: int):
        """Training id(s) -> image(s): a scalar id gives [r, r, C], a vector of ids (stores that
        `reads_batches`) gives [n, r, r, C]."""
        read, stored = self._store.tensor_reader(resolution), len(self._train_ids)
        ids = tf.constant(self._train_ids)

        def image(virtual_ids):
            pictures = read(tf.gather(ids, virtual_ids % stored))
            if self._mirror:
                flipped = tf.reshape(virtual_ids >= stored, tf.concat([tf.shape(virtual_ids), [1, 1, 1]], axis=0))
                pictures = tf.where(flipped, tf.reverse(pictures, axis=[-2]), pictures)
            return pictures

        return image

    def test_images(self, resolution: int, count: int | None = None) -> np.ndarray:
        """The first `count` held-out images (all when None), uint8 [n, r, r, C], always in the same order."""
        return np.asarray(self.test_rows(resolution)[:count])

    def train_images(self, resolution: int, count: int | None = None) -> np.ndarray:
        """The first `count` training images of a fixed shuffled order (a uniform sample, e.g. for FID)."""
        return np.asarray(self.train_rows(resolution)[:count])

    def test_rows(self, resolution: int) -> ImageRows:
        """`test_images(resolution)`, read when sliced and asked for (np.asarray)."""
        self._check_level(resolution)
        return ImageRows(self._store, self._test_ids, np.zeros(len(self._test_ids), bool), resolution)

    def train_rows(self, resolution: int) -> ImageRows:
        """`train_images(resolution)`, read when sliced and asked for (np.asarray)."""
        self._check_level(resolution)
        order = self._reference_order(None)
        stored = len(self._train_ids)
        return ImageRows(self._store, self._train_ids[order % stored], order >= stored, resolution)

    def train_sample_labels(self, count: int | None = None) -> np.ndarray | None:
        """The labels of `train_images(resolution, count)`, in the same order (None without labels)."""
        if self.train_labels is None:
            return None
        return self.train_labels[self._reference_order(count)]

    def train_order(self, count: int | None = None) -> np.ndarray:
        """Each of `train_images(resolution, count)`'s rows as its index among the training images in
        their stored order (MNIST: the IDX file's; a mirrored copy as its original's)."""
        return self._reference_order(count) % len(self._train_ids)

    def _reference_order(self, count: int | None) -> np.ndarray:
        return np.random.default_rng(REFERENCE_ORDER_SEED).permutation(self.num_train)[:count]

    def _check_level(self, resolution: int) -> None:
        levels = resolution_levels(self.resolution)
        if resolution not in levels:
            raise ValueError(
                f"resolution {resolution} is not a level of this {self.resolution}x{self.resolution} source: "
                f"its levels are {', '.join(map(str, levels))} ({self.resolution} divided by a power of two, "
                f"down to {LOWEST_RESOLUTION})"
            )


class ImageRows:
    """Images of a store in a fixed order, read only when asked for: slicing gives another ImageRows
    (as slicing an array gives a view), `np.asarray(rows)` reads uint8 [n, r, r, C]. Data too large
    for memory (30,000 images at 1024x1024 are 94 GB) is worked through a slice at a time."""

    def __init__(self, store, ids: np.ndarray, mirrored: np.ndarray, resolution: int):
        self._store, self._ids, self._mirrored, self._resolution = store, ids, mirrored, resolution
        self.shape = (len(ids), resolution, resolution, store.channels)
        self.ndim, self.dtype = 4, np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: slice) -> ImageRows:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError(f"ImageRows take slices [a:b], not {index!r}; read them with np.asarray first")
        return ImageRows(self._store, self._ids[index], self._mirrored[index], self._resolution)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        images = self._store.read(self._ids, self._resolution)
        images[self._mirrored] = images[self._mirrored, :, ::-1]
        return images if dtype is None else images.astype(dtype)


def _square_images(images, name: str) -> np.ndarray:
    """uint8 [N, R, R] or [N, R, R, C] as NHWC, checked."""
    given = np.asarray(images)
    if given.dtype != np.uint8:
        raise DataError(f"{name}: dtype {given.dtype}, expected uint8 pixels 0..255")
    nhwc = given[..., np.newaxis] if given.ndim == 3 else given
    if nhwc.ndim != 4 or not nhwc.shape[1] == nhwc.shape[2] >= LOWEST_RESOLUTION or nhwc.shape[3] not in (1, 3):
        raise DataError(f"{name}: shape {list(given.shape)}, expected [N, R, R] or [N, R, R, 1 or 3] "
                        f"with R >= {LOWEST_RESOLUTION}")
    return nhwc


def _labels(labels, count: int, name: str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (count,):
        raise DataError(f"{name}: shape {list(labels.shape)}, expected [{count}] (one per image)")
    return labels
