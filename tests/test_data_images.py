"""Image sources: seeded, resumable training order; levels; MNIST native and padded; arrays; folder == prepared; errors."""

import gzip
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alae_tf.data import ImageSource, open_image_source
from alae_tf.data import datasets as datasets_module
from alae_tf.data import folder_check
from alae_tf.data.files import encode_record, held_out_positions, load_square
from alae_tf.data.mnist import load_mnist
from alae_tf.data.prepare import prepare
from alae_tf.data.pyramid import box_downsample, resolution_levels
from alae_tf.data.stores import ArrayStore
from alae_tf.errors import ConfigError, DataError

COUNT = 10


def take(dataset, count):
    return np.stack([image.numpy() for image in dataset.take(count)])


def ids(images):
    """Each test image of `numbered_folder` is one flat grey level, 20 * its number."""
    return [int(image[0, 0, 0]) // 20 for image in images]


@pytest.fixture(scope="module")
def numbered_folder(tmp_path_factory):
    """COUNT 8x8 gray PNGs, image i filled with 20 * i (so levels are flat too)."""
    root = tmp_path_factory.mktemp("numbered")
    for i in range(COUNT):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def numbered(numbered_folder):
    return open_image_source("folder", str(numbered_folder), 8, test_count=0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(folder, prepared dir) of 12 random RGB images of assorted sizes, prepared at 32."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    for i in range(12):
        height, width = rng.integers(20, 70, 2)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:02d}.jpg", quality=90)
    prepared = root.parent / (root.name + "-prepared")
    prepare(root, prepared, 32, test_count=3, verbose=False)
    return root, prepared


@pytest.fixture(scope="module")
def mnist_splits():
    return load_mnist("package")


@pytest.fixture(scope="module")
def mnist():
    return open_image_source("mnist", None, 32, mnist_source="package")


@pytest.fixture(scope="module")
def mnist_native():
    return open_image_source("mnist", None, 28, mnist_source="package")


# --- training order ------------------------------------------------------------------------


def test_each_epoch_visits_every_image_once_in_a_new_seeded_order(numbered):
    stream = ids(take(numbered.train_dataset(8, seed=7), 3 * COUNT))
    epochs = [stream[e * COUNT : (e + 1) * COUNT] for e in range(3)]
    assert all(sorted(epoch) == list(range(COUNT)) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    assert ids(take(numbered.train_dataset(8, seed=7), 3 * COUNT)) == stream
    assert ids(take(numbered.train_dataset(8, seed=8), 3 * COUNT)) != stream


@pytest.mark.parametrize("start", [3, COUNT, 2 * COUNT - 2, 5 * COUNT + 1])  # mid-epoch, boundary, across, later
def test_starting_at_element_k_continues_the_same_stream(numbered, start):
    whole = take(numbered.train_dataset(4, seed=3), start + 6)
    resumed = take(numbered.train_dataset(4, seed=3, start_index=start), 6)
    np.testing.assert_array_equal(resumed, whole[start:])


def test_batches_are_consecutive_elements_of_the_stream_for_every_store(numbered, photos):
    arrays = ImageSource.from_arrays(np.random.default_rng(2).integers(0, 256, (9, 8, 8, 3), dtype=np.uint8))
    pictures = np.random.default_rng(3).integers(0, 256, (7, 8, 8, 1), dtype=np.uint8)
    mirrored = ImageSource(ArrayStore(pictures), description="mirrored", train_ids=np.arange(5),
                           test_ids=np.arange(5, 7), mirror=True)
    prepared = open_image_source("prepared", str(photos[1]), 32)
    for source in (arrays, mirrored, numbered, prepared):
        elements = take(source.train_dataset(8, seed=4, start_index=3), 4 * 5)
        batches = take(source.train_dataset(8, seed=4, start_index=3, batch_size=4), 5)
        assert batches.shape == (5, 4, 8, 8, source.channels) and batches.dtype == np.uint8
        np.testing.assert_array_equal(batches.reshape(elements.shape), elements)
    epoch = take(mirrored.train_dataset(8, seed=0, batch_size=10), 1)[0]
    expected = {image.tobytes() for image in pictures[:5]} | {image[:, ::-1].tobytes() for image in pictures[:5]}
    assert {image.tobytes() for image in epoch} == expected


def test_a_folders_description_counts_every_change_training_makes_to_its_images(tmp_path, monkeypatch):
    """Only channel conversions were counted: an audit's folder of 480 images said "24 converted to
    RGB" and nothing of its 48 transparent (composited over black) and 48 non-square (cropped) ones."""
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    for index, (mode, size) in enumerate([("RGB", (8, 8))] * 6 + [("RGBA", (8, 8)), ("RGBA", (12, 8)), ("L", (8, 16))]):
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(tmp_path / f"{index}.png")
    source = open_image_source("folder", str(tmp_path), 8, test_count=1)
    assert source.description == (f"image folder {tmp_path}: 9 images (1 held out, 1 converted to RGB, 2 with alpha "
                                  "composited over black, 2 centre-cropped to squares) at 8x8 RGB")


def test_a_file_name_that_is_not_utf8_is_read_and_served(tmp_path, monkeypatch):
    """Linux names are bytes: a Latin-1 name (Python's surrogate-escaped str) ended training's start
    in a UnicodeEncodeError traceback while prepare read the same folder."""
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    names = [b"caf\xe9.png", b"plain.png", b"other.png"]
    for name in names:
        path = os.path.join(os.fsencode(folder), name)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(os.fsdecode(path), format="PNG")
    source = open_image_source("folder", str(folder), 8, test_count=1)
    assert source.num_train == 2 and source.contents.startswith("3 images, ")
    assert take(source.train_dataset(8, seed=0), 2).shape == (2, 8, 8, 3)


def test_a_transparency_key_counts_as_transparency_in_the_description_as_in_decoding(tmp_path, monkeypatch):
    """PNG's tRNS chunk makes a palette, RGB or grayscale image transparent without an alpha channel:
    decoding composited those over black, but the description counted alpha modes only."""
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    key = (10, 200, 30)
    rgb = np.full((8, 8, 3), 90, np.uint8)
    rgb[:4] = key
    Image.fromarray(rgb).save(folder / "0_plain.png")
    Image.fromarray(rgb).save(folder / "1_rgb_key.png", transparency=key)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=2).save(folder / "2_palette.png", transparency=0)
    Image.fromarray(rgb[..., 1]).save(folder / "3_gray_key.png", transparency=200)
    assert [Image.open(file).mode for file in sorted(folder.iterdir())] == ["RGB", "RGB", "P", "L"]
    source = open_image_source("folder", str(folder), 8, test_count=0)
    assert source.description == (f"image folder {folder}: 4 images (0 held out, 1 converted to RGB, 3 with alpha "
                                  "composited over black) at 8x8 RGB")
    keyed = load_square(folder / "1_rgb_key.png", 8, 3)
    assert keyed[:4].max() == 0 and (keyed[4:] == 90).all()  # what the description says decoding does
    again = open_image_source("folder", str(folder), 8, test_count=0)  # from the folder-check cache
    assert again.description == source.description


def test_a_keyed_16_bit_png_is_scaled_and_its_keyed_pixels_are_black(tmp_path):
    """Training scaled 16-bit gray and ignored its tRNS key (the folder description said composited)."""
    levels = np.full((8, 8), 40000, np.uint16)
    levels[:, :3] = 1000  # the key
    Image.fromarray(levels).save(tmp_path / "keyed.png", transparency=1000)
    assert Image.open(tmp_path / "keyed.png").mode == "I;16"
    pixels = load_square(tmp_path / "keyed.png", 8, 1)[..., 0]
    assert (pixels[:, :3] == 0).all() and (pixels[:, 3:] == round(40000 / 257)).all()


def test_every_level_has_its_shape_dtype_and_the_block_means(photos):
    source = open_image_source("folder", str(photos[0]), 32, test_count=3)
    full = source.test_images(32)
    for resolution in (4, 8, 16, 32):
        element = next(iter(source.train_dataset(resolution, seed=0)))
        assert element.shape == (resolution, resolution, 3) and element.dtype == tf.uint8
        level = source.test_images(resolution)
        assert level.shape == (3, resolution, resolution, 3) and level.dtype == np.uint8
        factor = 32 // resolution
        means = full.reshape(3, resolution, factor, resolution, factor, 3).astype(np.float64).mean(axis=(2, 4))
        np.testing.assert_array_equal(level, np.rint(means).astype(np.uint8))
    assert 0 <= full.min() and full.max() <= 255 and full.std() > 10
    with pytest.raises(ValueError, match="power of two"):
        source.train_dataset(64, seed=0)


@pytest.mark.parametrize("side, levels", [
    (32, [4, 8, 16, 32]), (28, [7, 14, 28]), (24, [6, 12, 24]), (6, [6]), (4, [4]),
])
def test_a_source_serves_its_side_halved_while_whole_and_at_least_4(side, levels):
    assert resolution_levels(side) == levels


def test_box_downsample_rounds_half_to_even():
    image = np.array([[1, 2], [0, 0]], np.uint8).reshape(2, 2, 1)  # mean 0.75 -> 1
    assert box_downsample(image, 1).item() == 1
    image = np.array([[1, 1], [0, 0]], np.uint8).reshape(2, 2, 1)  # mean 0.5 -> 0 (even)
    assert box_downsample(image, 1).item() == 0


def test_held_out_images_are_spread_evenly_and_deterministically():
    np.testing.assert_array_equal(held_out_positions(10, 3), [1, 5, 8])
    np.testing.assert_array_equal(held_out_positions(100, 10), np.arange(5, 100, 10))
    assert len(set(held_out_positions(1001, 1000))) == 1000
    with pytest.raises(DataError, match="cannot hold out 5 of 5"):
        held_out_positions(5, 5)


def test_train_images_are_a_fixed_sample(numbered):
    first = ids(numbered.train_images(8, 4))
    assert first == ids(numbered.train_images(8))[:4] and len(set(first)) == 4


def test_image_rows_read_only_what_is_asked_for(numbered_folder, monkeypatch):
    """Evaluation works through data larger than memory a slice at a time: slicing reads nothing,
    np.asarray reads that slice only, with the same pixels as train_images / test_images."""
    source = open_image_source("folder", str(numbered_folder), 8, test_count=2)
    reads = []
    store = source._store
    monkeypatch.setattr(store, "read_one", lambda i, r, read=store.read_one: reads.append(i) or read(i, r))
    rows = source.train_rows(8)[:6]
    middle = rows[2:5]
    assert len(rows) == 6 and middle.shape == (3, 8, 8, 1) and middle.ndim == 4 and reads == []
    np.testing.assert_array_equal(np.asarray(middle), source.train_images(8, 5)[2:5])
    assert len(reads) == 3 + 5
    np.testing.assert_array_equal(np.asarray(source.test_rows(4)), source.test_images(4))
    with pytest.raises(TypeError, match=r"slices \[a:b\]"):
        rows[[0, 2]]


def test_image_rows_flip_the_mirrored_copies():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    source = ImageSource(ArrayStore(images[..., None]), description="two", train_ids=np.arange(2), test_ids=[],
                         mirror=True)
    rows = np.asarray(source.train_rows(4))
    assert len(rows) == 4 and sum(np.array_equal(r, images[i, :, ::-1, None]) for r in rows for i in range(2)) == 2
    np.testing.assert_array_equal(rows, source.train_images(4))


# --- MNIST family ----------------------------------------------------------------------------


def test_mnist_is_padded_with_two_black_pixels_and_keeps_labels(mnist, mnist_splits):
    assert (mnist.channels, mnist.resolution, mnist.num_train) == (1, 32, 60000)
    assert "MNIST" in mnist.description and "padded to 32x32" in mnist.description
    test = mnist.test_images(32, 5)
    assert test.shape == (5, 32, 32, 1) and test.dtype == np.uint8
    np.testing.assert_array_equal(test[:, 2:30, 2:30, 0], mnist_splits.test_images[:5])
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert not mnist.test_images(32)[:, border].any()
    np.testing.assert_array_equal(mnist.train_labels, mnist_splits.train_labels)
    np.testing.assert_array_equal(mnist.test_labels, mnist_splits.test_labels)
    assert mnist.train_labels.dtype == np.int64


def test_mnist_training_stream_draws_from_the_padded_train_split(mnist, mnist_splits):
    stream = take(mnist.train_dataset(32, seed=0, start_index=59_998), 4)  # across the epoch boundary
    np.testing.assert_array_equal(stream, take(mnist.train_dataset(32, seed=0, start_index=59_998), 4))
    train_set = {image.tobytes() for image in mnist_splits.train_images[:]}
    assert all(image[2:30, 2:30, 0].tobytes() in train_set for image in stream)
    low = take(mnist.train_dataset(4, seed=0), 2)
    assert low.shape == (2, 4, 4, 1)


def test_mnist_at_28_is_native_without_padding(mnist_native, mnist, mnist_splits):
    assert (mnist_native.channels, mnist_native.resolution, mnist_native.num_train) == (1, 28, 60000)
    assert "MNIST" in mnist_native.description and "padded" not in mnist_native.description
    test = mnist_native.test_images(28)
    assert test.shape == (10000, 28, 28, 1) and test.dtype == np.uint8
    np.testing.assert_array_equal(test[..., 0], mnist_splits.test_images)
    np.testing.assert_array_equal(mnist.test_images(32, 100)[:, 2:30, 2:30], test[:100])  # 32 = 28 + black border
    np.testing.assert_array_equal(mnist_native.train_labels, mnist_splits.train_labels)
    element = next(iter(mnist_native.train_dataset(28, seed=0)))
    assert element.shape == (28, 28, 1) and element.dtype == tf.uint8
    assert element.numpy()[..., 0].tobytes() in {image.tobytes() for image in mnist_splits.train_images}
    np.testing.assert_array_equal(mnist_native.test_images(7, 3), box_downsample(test[:3], 7))
    with pytest.raises(ValueError, match="levels are 7, 14, 28"):
        mnist_native.test_images(32)


def test_mnist_below_28_reads_the_native_or_the_padded_images():
    at_14 = open_image_source("mnist", None, 14, mnist_source="package")
    at_16 = open_image_source("mnist", None, 16, mnist_source="package")
    native = load_mnist("package").test_images[:4, :, :, np.newaxis]
    padded = np.pad(native, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(at_14.test_images(14, 4), box_downsample(native, 14))
    np.testing.assert_array_equal(at_16.test_images(16, 4), box_downsample(padded, 16))
    assert "box-downsampled to 14x14" in at_14.description and "padded to 32x32" in at_16.description


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_reads_idx_files_and_names_the_apt_package_when_missing(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    for prefix, count in (("train", 6), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)), 0x803)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count), 0x801)
    source = open_image_source("fashion_mnist", str(tmp_path), 16)
    assert source.num_train == 6 and source.channels == 1 and "Fashion-MNIST" in source.description
    assert source.test_images(16).shape == (4, 16, 16, 1) and len(source.test_labels) == 4
    monkeypatch.setattr(datasets_module, "FASHION_MNIST_DIR", tmp_path / "not-installed")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*--data-path"):
        open_image_source("fashion_mnist", None, 32)


# --- arrays ----------------------------------------------------------------------------------


def test_from_arrays_serves_arrays_as_nhwc_with_labels():
    rng = np.random.default_rng(5)
    train, test = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8), rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    source = ImageSource.from_arrays(train, test, train_labels=np.arange(12) % 10, test_labels=[1, 2, 3],
                                     description="random pixels")
    assert (source.num_train, source.num_test, source.resolution, source.channels) == (12, 3, 8, 1)
    assert source.description == "random pixels"
    np.testing.assert_array_equal(source.test_images(8), test[..., np.newaxis])
    np.testing.assert_array_equal(source.test_images(4), box_downsample(test[..., np.newaxis], 4))
    stream = take(source.train_dataset(8, seed=0), 12)
    assert stream.shape == (12, 8, 8, 1) and stream.dtype == np.uint8
    assert sorted(image.tobytes() for image in stream) == sorted(image[..., np.newaxis].tobytes() for image in train)
    sample = source.train_images(8, 5)
    labels = source.train_sample_labels(5)
    assert labels.dtype == np.int64
    for image, label in zip(sample, labels):
        assert label == next(i for i in range(12) if np.array_equal(train[i, ..., np.newaxis], image)) % 10
    np.testing.assert_array_equal(source.test_labels, [1, 2, 3])


def test_from_arrays_takes_rgb_and_no_test_split():
    train = np.random.default_rng(6).integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    source = ImageSource.from_arrays(train)
    assert (source.num_train, source.num_test, source.channels, source.resolution) == (5, 0, 3, 12)
    assert source.test_images(12).shape == (0, 12, 12, 3) and source.train_sample_labels() is None
    assert source.train_images(6).shape == (5, 6, 6, 3)


@pytest.mark.parametrize("train, test, labels, message", [
    (np.zeros((4, 8, 8), np.float32), None, None, "dtype float32, expected uint8"),
    (np.zeros((4, 8, 6), np.uint8), None, None, r"shape \[4, 8, 6\], expected \[N, R, R\]"),
    (np.zeros((4, 2, 2), np.uint8), None, None, "R >= 4"),
    (np.zeros((4, 8, 8, 2), np.uint8), None, None, "1 or 3"),
    (np.zeros((0, 8, 8), np.uint8), None, None, "no images"),
    (np.zeros((4, 8, 8), np.uint8), np.zeros((2, 4, 4), np.uint8), None, "test_images are"),
    (np.zeros((4, 8, 8), np.uint8), None, [1, 2, 3], r"train_labels: shape \[3\], expected \[4\]"),
])
def test_from_arrays_names_what_is_wrong(train, test, labels, message):
    with pytest.raises(DataError, match=message):
        ImageSource.from_arrays(train, test, train_labels=labels)


# --- folder and prepared data ----------------------------------------------------------------


def test_folder_and_prepared_give_the_same_images(photos):
    folder = open_image_source("folder", str(photos[0]), 32, test_count=3)
    prepared = open_image_source("prepared", str(photos[1]), 32)
    assert (folder.num_train, folder.channels) == (prepared.num_train, prepared.channels) == (9, 3)
    for resolution in (4, 16, 32):
        np.testing.assert_array_equal(folder.test_images(resolution), prepared.test_images(resolution))
        np.testing.assert_array_equal(folder.train_images(resolution), prepared.train_images(resolution))
    np.testing.assert_array_equal(take(folder.train_dataset(8, seed=1, start_index=5), 12),
                                  take(prepared.train_dataset(8, seed=1, start_index=5), 12))


def test_prepared_data_can_be_read_at_a_lower_full_resolution(photos):
    at_32 = open_image_source("prepared", str(photos[1]), 32)
    at_16 = open_image_source("prepared", str(photos[1]), 16)
    assert at_16.resolution == 16
    np.testing.assert_array_equal(at_16.test_images(8), at_32.test_images(8))
    with pytest.raises(DataError, match="up to 32x32"):
        open_image_source("prepared", str(photos[1]), 64)


def copy_of(folder, tmp_path):
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "folder"))


def test_a_large_folder_shows_the_progress_of_its_check(photos, tmp_path, capsys, monkeypatch):
    """Opening a folder decodes every file (minutes for tens of thousands): from SHOWN_FROM files
    to decode on it says so and shows its progress (here as lines: the output is not a terminal)."""
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(folder_check, "SHOWN_FROM", 12)
    open_image_source("folder", str(photos[0]), 32, test_count=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"checking that the 12 image files of {photos[0]} decode (once: the results are kept in "
                        f"{folder_check.cache_file(photos[0])})")
    assert lines[-1].startswith("12/12 files ") and len(lines) == 1 + 10  # a line per tenth
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "another_cache"))
    monkeypatch.setattr(folder_check, "SHOWN_FROM", 13)
    open_image_source("folder", str(photos[0]), 32, test_count=3)
    assert capsys.readouterr().out == ""


def test_a_folder_check_is_remembered_and_redone_for_changed_files_only(photos, tmp_path, monkeypatch):
    folder = copy_of(photos[0], tmp_path)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "cache"))
    decoded = []
    check_decodes = folder_check.check_decodes
    monkeypatch.setattr(folder_check, "check_decodes", lambda path: decoded.append(path.name) or check_decodes(path))

    first = open_image_source("folder", str(folder), 32, test_count=3)
    assert len(decoded) == 13 and folder_check.cache_file(folder).is_file()
    decoded.clear()
    again = open_image_source("folder", str(folder), 32, test_count=3)
    assert decoded == [] and again.skipped == first.skipped and again.description == first.description
    np.testing.assert_array_equal(again.test_images(32), first.test_images(32))

    # A file rewritten (new size and time) and a new one are decoded; the rest is not.
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(folder / "03.jpg")
    os.utime(folder / "03.jpg", ns=(1, 1))
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "12.png")
    decoded.clear()
    changed = open_image_source("folder", str(folder), 32, test_count=3)
    assert sorted(decoded) == ["03.jpg", "12.png"] and changed.num_train + 3 == 13
    assert changed.skipped == (("broken.jpg", "not a recognised image format"),) == first.skipped

    # Results of another Pillow (which may decode differently) are not used.
    cached = json.loads(folder_check.cache_file(folder).read_text())
    folder_check.cache_file(folder).write_text(json.dumps({**cached, "pillow": "0.0"}))
    decoded.clear()
    open_image_source("folder", str(folder), 32, test_count=3)
    assert len(decoded) == 14


def test_a_cache_that_cannot_be_written_is_reported_and_the_folder_opens(photos, tmp_path, monkeypatch, caplog):
    (tmp_path / "not_a_directory").write_text("")
    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path / "not_a_directory"))
    with caplog.at_level(logging.WARNING, logger="alae_tf.data.folder_check"):
        source = open_image_source("folder", str(photos[0]), 32, test_count=3)
    assert source.num_train == 9
    assert "cannot keep the folder check in" in caplog.text and "set ALAE_TF_CACHE" in caplog.text


def test_folder_reports_unreadable_files_in_one_line(tmp_path, caplog):
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "empty.webp").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="alae_tf.data.datasets"):
        source = open_image_source("folder", str(tmp_path), 8)
    assert len(caplog.records) == 1
    assert "skipped 2 of 5" in caplog.text and "broken.jpg" in caplog.text and "empty.webp" in caplog.text
    assert source.num_train == 3 and [name for name, _ in source.skipped] == ["broken.jpg", "empty.webp"]
    with caplog.at_level(logging.WARNING, logger="alae_tf.data.datasets"):  # once per process (edit opens it twice)
        open_image_source("folder", str(tmp_path), 8)
    assert len(caplog.records) == 1
    (tmp_path / "also_broken.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="alae_tf.data.datasets"):  # a new problem is reported again
        open_image_source("folder", str(tmp_path), 8)
    assert len(caplog.records) == 2 and "skipped 3 of 6" in caplog.records[-1].getMessage()


def write_alae_shards(directory, images, labels):
    """StyleGAN/ALAE layout: only some levels, sharded as name-rNN.tfrecords.PPP, with an extra label feature."""
    for level, log2 in ((images, 4), (box_downsample(images, 8), 3)):
        for part, rows in enumerate(np.array_split(np.arange(len(images)), 2)):
            with tf.io.TFRecordWriter(str(directory / f"faces-r{log2:02d}.tfrecords.{part:03d}")) as writer:
                for row in rows:
                    example = tf.train.Example.FromString(encode_record(level[row]))
                    example.features.feature["label"].int64_list.value.append(int(labels[row]))
                    writer.write(example.SerializeToString())


def test_reads_official_alae_style_shards_and_fills_missing_levels(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    write_alae_shards(tmp_path, images, np.arange(20) % 10)
    source = open_image_source("prepared", str(tmp_path), 16, test_count=4)
    assert "StyleGAN/ALAE" in source.description and source.num_train == 16
    positions = held_out_positions(20, 4)
    np.testing.assert_array_equal(source.test_images(16), images[positions])
    np.testing.assert_array_equal(source.test_images(4), box_downsample(images[positions], 4))  # no r02 files
    assert source.test_images(8).shape == (4, 8, 8, 3)


def test_meta_and_record_mismatches_are_reported(photos, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in photos[1].iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "num_images": 99}))
    with pytest.raises(DataError, match="lists 99 images but the records hold 12"):
        open_image_source("prepared", str(copy), 32)
    top = copy / "images-r05.tfrecords"
    top.write_bytes(top.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or not a TFRecord file"):
        open_image_source("prepared", str(copy), 32)
    for damaged in ("{bad", json.dumps({"num_images": 12})):  # a NameError before 2026-12-05
        (copy / "meta.json").write_text(damaged)
        with pytest.raises(DataError, match=r"meta.json: unreadable or incomplete \(.*\); re-create the dataset"):
            open_image_source("prepared", str(copy), 32)


@pytest.mark.parametrize("dataset, path, resolution, error, message", [
    ("folder", None, 32, DataError, "needs a directory; pass --data-path"),
    ("folder", "/nowhere/at/all", 32, DataError, "no such directory"),
    ("prepared", "/nowhere/at/all", 32, DataError, "no such directory"),
    ("folder", "A_FILE", 32, DataError, "a_file.png: a file, not a directory of images; check --data-path"),
    ("prepared", "EMPTY", 32, DataError, "no TFRecord files.*alae_tf.data.prepare"),
    ("folder", "EMPTY", 32, DataError, "no image files"),
    ("imagenet", "EMPTY", 32, ConfigError, "unknown dataset"),
    ("folder", "EMPTY", 24, ConfigError, "read at power-of-two sides, and this model's images are 24x24"),
    ("folder", None, 28, DataError, "needs a directory"),  # the missing path first: the MLP presets' 28
    ("mnist", None, 64, DataError, "32 or less"),
    ("mnist", None, 24, DataError, "28, 14, 7 to train on them as they are"),
    ("fashion_mnist", None, 12, DataError, "power of two of 32 or less"),
])
def test_clear_errors_for_bad_paths_and_settings(tmp_path, dataset, path, resolution, error, message):
    path = str(tmp_path) if path == "EMPTY" else path
    if path == "A_FILE":
        path = str(tmp_path / "a_file.png")
        Path(path).write_bytes(b"")
    with pytest.raises(error, match=message):
        open_image_source(dataset, path, resolution)


# What the file stores for an upright image, for each EXIF orientation (2-8), by the tag's
# definition: the viewer applies the inverse of these (mirrors and transposes are their own inverse).
STORED_FOR_ORIENTATION = {
    2: lambda u: u[:, ::-1], 3: lambda u: u[::-1, ::-1], 4: lambda u: u[::-1],
    5: lambda u: u.transpose(1, 0, 2), 6: lambda u: np.rot90(u, 1), 7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),
    8: lambda u: np.rot90(u, -1),
}


def test_phone_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    """A phone stores a portrait photo sideways with an EXIF Orientation tag; viewers (and the
    studio's uploads) show it upright, and so must training, prepare, edit and project."""
    from alae_tf.data.files import load_square, read_header
    from serving.http.studio_images import model_image

    rng = np.random.default_rng(4)
    upright = rng.integers(0, 256, (50, 30, 3), dtype=np.uint8)  # portrait, no symmetry
    Image.fromarray(upright).save(tmp_path / "upright.png")
    expected = load_square(tmp_path / "upright.png", 16, 3)
    for orientation, stored in STORED_FOR_ORIENTATION.items():
        path = tmp_path / f"orientation_{orientation}.png"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(np.ascontiguousarray(stored(upright))).save(path, exif=exif.tobytes())
        assert read_header(path) == ("RGB", (30, 50), True, False), orientation
        np.testing.assert_array_equal(load_square(path, 16, 3), expected, err_msg=f"orientation {orientation}")
        studio, note = model_image(path.read_bytes(), (16, 16, 3))
        assert "turned upright (EXIF orientation)" in note
        assert np.abs(studio.astype(int) - expected).max() <= 1, orientation  # the studio's own decode agrees
    assert read_header(tmp_path / "upright.png") == ("RGB", (30, 50), False, False)


def test_the_editing_tools_take_held_out_images_as_training_saw_them(photos):
    """A grayscale model trained on a folder of colour photos: `held-out:N` (edit, project) gives
    the held-out images training held out, converted to the model's one channel as training
    converted them (it read them as RGB, and the encoder failed on 3 channels)."""
    from alae_tf.config import load_preset
    from alae_tf.editing.images import select_images
    from alae_tf.data import open_run_images

    config = load_preset("tiny_style")
    config.data.dataset, config.data.path, config.data.test_count = "folder", str(photos[0]), 3
    assert config.model.image_shape == [8, 8, 1]
    selected = select_images(["held-out:2"], config)
    assert selected.shape == (2, 8, 8, 1) and selected.dtype == np.uint8
    np.testing.assert_array_equal(selected, open_run_images(config).test_images(8, 2))


def test_linked_folders_are_listed_each_once_and_a_link_loop_ends(tmp_path):
    """os.walk skipped linked folders: their images were silently not trained on."""
    from alae_tf.data.files import list_image_files

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "root"
    (root / "own").mkdir(parents=True)
    for folder, names in ((elsewhere, ["x.png", "y.png"]), (root / "own", ["a.png", ".hidden.png"])):
        for name in names:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / name)
    (root / "linked").symlink_to(elsewhere)
    (root / "linked_again").symlink_to(elsewhere)  # the same folder twice: listed once, under the first name
    (root / "own" / "up").symlink_to(root)  # a loop
    assert [p.relative_to(root).as_posix() for p in list_image_files(root)] == ["linked/x.png", "linked/y.png", "own/a.png"]


def test_an_image_of_over_89_megapixels_is_read_without_pillows_bomb_warning(tmp_path):
    """A 95-megapixel scan in a training folder printed Pillow's "could be decompression bomb DOS
    attack" warning, twice, with paths into PIL: nothing an operator of their own files acts on.
    (In a child process: pytest resets warning filters set while it imports a test file.)"""
    import subprocess
    import sys

    Image.new("L", (10000, 9500), 77).save(tmp_path / "scan.png")
    script = ("import sys; from alae_tf.data.files import load_square\n"
              "print(int(load_square(sys.argv[1], 8, 1).min()), int(load_square(sys.argv[1], 8, 1).max()))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "scan.png")], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).resolve().parents[1], check=True)
    assert result.stdout.split() == ["77", "77"]
    assert "Warning" not in result.stderr, result.stderr
