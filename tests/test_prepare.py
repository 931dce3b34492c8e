"""python -m alae_tf.data.prepare on small generated folders: counts, skips, levels, crop, mirror, errors."""

import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alae_tf.data import prepare as prepare_module
from alae_tf.data import open_image_source
from alae_tf.data.prepare import main, prepare
from alae_tf.errors import DataError

R = 32
rng = np.random.default_rng(0)


def save(path, pixels, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def random_rgb(height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def mixed_folder(tmp_path):
    """8 readable images (one tiny, one non-square, one gray, one RGBA) and 3 broken files."""
    src = tmp_path / "src"
    for i in range(3):
        save(src / f"good{i}.png", random_rgb(40, 40))
    save(src / "nested" / "deep" / "photo.jpg", random_rgb(64, 64), quality=95)
    save(src / "tiny.png", random_rgb(5, 5))
    save(src / "wide.bmp", random_rgb(32, 48))
    save(src / "gray.png", rng.integers(0, 256, (36, 36), dtype=np.uint8))
    save(src / "alpha.webp", rng.integers(0, 256, (33, 33, 4), dtype=np.uint8), lossless=True)
    whole = save(tmp_path / "whole.png", random_rgb(40, 40)).read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (src / "random.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (src / "empty.png").write_bytes(b"")
    (src / "notes.txt").write_text("not an image, not counted")
    return src


def run(capsys, *args):
    code = main([str(arg) for arg in args] + ["--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def read_level(directory, resolution):
    """All records of one level file, decoded by plain tf.data + tf.io (as the StyleGAN/ALAE loaders do)."""
    features = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}
    images = []
    path = directory / f"images-r{resolution.bit_length() - 1:02d}.tfrecords"
    for record in tf.data.TFRecordDataset(str(path)):
        example = tf.io.parse_single_example(record, features)
        chw = tf.reshape(tf.io.decode_raw(example["data"], tf.uint8), example["shape"])
        images.append(tf.transpose(chw, [1, 2, 0]).numpy())
    return np.stack(images)


def halve(image):
    height, width, channels = image.shape
    return image.reshape(height // 2, 2, width // 2, 2, channels).mean(axis=(1, 3))


def test_prepare_counts_skips_and_writes_every_level(mixed_folder, tmp_path, capsys):
    dst = tmp_path / "prepared"
    code, out, err = run(capsys, mixed_folder, dst, "--resolution", R, "--test-count", 2)
    assert (code, err) == (0, "")
    meta = json.loads((dst / "meta.json").read_text())
    assert meta["num_images"] == 8 and meta["test_count"] == 2 and meta["channels"] == 3
    assert meta["resolution"] == R and meta["mirror"] is False and meta["upscaled"] == 1
    assert sorted(entry["file"] for entry in meta["skipped"]) == ["empty.png", "random.jpg", "truncated.png"]
    assert "wrote 8 images" in out
    assert "skipped 3 of 11 image files" in out and "truncated.png" in out and "upscaled 1" in out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["prepared", "src", "whole.png"]  # no temp dir left
    for resolution in (4, 8, 16, 32):
        images = read_level(dst, resolution)
        assert images.shape == (8, resolution, resolution, 3) and images.dtype == np.uint8


def test_lower_levels_are_repeated_2x2_means_of_the_top_level(mixed_folder, tmp_path, capsys):
    dst = tmp_path / "prepared"
    assert run(capsys, mixed_folder, dst, "--resolution", R)[0] == 0
    top = read_level(dst, R)
    expected = top.astype(np.float64)
    for resolution in (16, 8, 4):
        expected = np.stack([halve(image) for image in expected])
        np.testing.assert_array_equal(read_level(dst, resolution), np.rint(expected).astype(np.uint8))


def test_centre_crop_keeps_the_middle_square_of_wide_and_tall_images(tmp_path, capsys):
    middle = random_rgb(R, R)
    wide = np.concatenate([np.full((R, 8, 3), 255, np.uint8), middle, np.zeros((R, 8, 3), np.uint8)], axis=1)
    tall = np.concatenate([np.full((5, R, 3), 255, np.uint8), middle, np.zeros((4, R, 3), np.uint8)], axis=0)
    save(tmp_path / "src" / "a_wide.png", wide)
    save(tmp_path / "src" / "b_tall.png", tall)  # 41 rows: the top loses (41 - 32) // 2 = 4 of its 5 white rows
    assert run(capsys, tmp_path / "src", tmp_path / "out", "--resolution", R)[0] == 0
    wide_out, tall_out = read_level(tmp_path / "out", R)
    np.testing.assert_array_equal(wide_out, middle)
    np.testing.assert_array_equal(tall_out[1:], middle[:-1])
    assert (tall_out[0] == 255).all()


def test_grayscale_folders_give_one_channel_and_grayscale_flag_forces_it(tmp_path, capsys):
    for i in range(3):
        save(tmp_path / "gray" / f"{i}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    save(tmp_path / "colour" / "c.jpg", random_rgb(32, 32))
    assert run(capsys, tmp_path / "gray", tmp_path / "g1", "--resolution", 8)[0] == 0
    assert run(capsys, tmp_path / "colour", tmp_path / "g2", "--resolution", 8, "--grayscale")[0] == 0
    assert run(capsys, tmp_path / "colour", tmp_path / "c3", "--resolution", 8)[0] == 0
    assert read_level(tmp_path / "g1", 8).shape == (3, 8, 8, 1)
    assert read_level(tmp_path / "g2", 8).shape == (1, 8, 8, 1)
    assert read_level(tmp_path / "c3", 8).shape == (1, 8, 8, 3)


def test_a_grayscale_prepared_folder_trains_an_rgb_model_as_its_images_would(tmp_path, capsys):
    """prepare stores a folder of grayscale images in 1 channel, and an RGB model (every official
    one) refused it, with advice that cannot be followed for a converted run."""
    save(tmp_path / "gray" / "a.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    save(tmp_path / "gray" / "b.jpg", rng.integers(0, 256, (32, 48), dtype=np.uint8), quality=90)
    save(tmp_path / "gray" / "c.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    assert run(capsys, tmp_path / "gray", tmp_path / "g", "--resolution", 16, "--test-count", 1)[0] == 0
    prepared = open_image_source("prepared", str(tmp_path / "g"), 16, channels=3, test_count=1)
    folder = open_image_source("folder", str(tmp_path / "gray"), 16, channels=3, test_count=1)
    assert prepared.channels == 3 and prepared.description.endswith("at 16x16 RGB (stored grayscale)")
    for resolution in (16, 4):
        for read in ("train_images", "test_images"):
            images = getattr(prepared, read)(resolution)
            assert images.shape[-1] == 3
            np.testing.assert_array_equal(images, getattr(folder, read)(resolution))
    for batch in prepared.train_dataset(8, seed=0).batch(2).take(1):
        assert batch.shape[-1] == 3
    assert open_image_source("prepared", str(tmp_path / "g"), 16, channels=1).channels == 1


def test_a_colour_prepared_folder_for_a_grayscale_model_says_how_to_match_them(tmp_path, capsys):
    save(tmp_path / "colour" / "c.jpg", random_rgb(32, 32))
    assert run(capsys, tmp_path / "colour", tmp_path / "c", "--resolution", 8)[0] == 0
    with pytest.raises(DataError, match=r"have 3 channel\(s\) but the model takes 1 .*a --config file whose "
                       r"model.image_shape ends in 3 .*, or prepare it again with python -m alae_tf.data.prepare --grayscale"):
        open_image_source("prepared", str(tmp_path / "c"), 8, channels=1)


def test_image_files_of_other_formats_are_named_not_passed_over(tmp_path, capsys, caplog):
    """A folder's GIF and TIFF files were left out unsaid (and an empty result said only "no image files")."""
    save(tmp_path / "src" / "a.png", random_rgb(16, 16))
    save(tmp_path / "src" / "sub" / "b.gif", random_rgb(16, 16))
    save(tmp_path / "src" / "c.TIFF", random_rgb(16, 16))
    with caplog.at_level("WARNING"):
        assert run(capsys, tmp_path / "src", tmp_path / "out", "--resolution", 8)[0] == 0
    note = "2 image file(s) of other formats (.gif, .tiff; e.g. "
    assert [record.getMessage() for record in caplog.records if note in record.getMessage()] != []
    (tmp_path / "src" / "a.png").unlink()
    code, _, err = run(capsys, tmp_path / "src", tmp_path / "out2", "--resolution", 8)
    assert code == 2 and "no image files (.png, .jpg, .jpeg, .webp, .bmp) found" in err and note in err


def test_a_prepared_dataset_read_as_a_folder_says_to_read_it_as_prepared(tmp_path, capsys):
    """It said "no image files (.png, ...) found", although the folder is full of data."""
    save(tmp_path / "colour" / "c.jpg", random_rgb(32, 32))
    assert run(capsys, tmp_path / "colour", tmp_path / "c", "--resolution", 8)[0] == 0
    with pytest.raises(DataError, match=r"c: a dataset written by python -m alae_tf.data.prepare, not a folder of image "
                                        r"files: train on it with --dataset prepared"):
        open_image_source("folder", str(tmp_path / "c"), 8)


def test_mirror_adds_flipped_copies_of_the_training_images_only(mixed_folder, tmp_path, capsys):
    dst = tmp_path / "prepared"
    assert run(capsys, mixed_folder, dst, "--resolution", R, "--test-count", 2, "--mirror")[0] == 0
    source = open_image_source("prepared", str(dst), R)
    assert source.num_train == 2 * 6
    train = source.train_images(R)
    originals = {image.tobytes() for image in train}
    assert len(originals) == 12  # 6 images and their 6 mirror images
    assert all(image[:, ::-1].tobytes() in originals for image in train)
    assert not {image.tobytes() for image in source.test_images(R)} & originals
    epoch = np.stack([image.numpy() for image in source.train_dataset(R, seed=0).take(12)])
    assert {image.tobytes() for image in epoch} == originals


def test_refuses_to_overwrite_without_the_flag(mixed_folder, tmp_path, capsys):
    dst = tmp_path / "prepared"
    assert run(capsys, mixed_folder, dst, "--resolution", 8)[0] == 0
    code, _, err = run(capsys, mixed_folder, dst, "--resolution", 16)
    assert code == 2 and err.startswith("error: ") and "--overwrite" in err and err.count("\n") == 1
    assert json.loads((dst / "meta.json").read_text())["resolution"] == 8
    assert run(capsys, mixed_folder, dst, "--resolution", 16, "--overwrite")[0] == 0
    assert json.loads((dst / "meta.json").read_text())["resolution"] == 16
    assert sorted(path.name for path in tmp_path.iterdir()) == ["prepared", "src", "whole.png"]
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    code, _, err = run(capsys, mixed_folder, documents, "--resolution", 8, "--overwrite")
    assert code == 2 and "is not a prepared dataset" in err and (documents / "thesis.txt").read_text() == "years of work"
    made = tmp_path / "made_for_it"  # an empty folder has nothing to lose: no --overwrite needed
    made.mkdir()
    assert run(capsys, mixed_folder, made, "--resolution", 8)[0] == 0 and (made / "meta.json").is_file()


def test_an_interrupted_prepare_leaves_nothing_behind(mixed_folder, tmp_path, capsys, monkeypatch):
    calls = []

    def interrupt_on_third(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.zeros((8, 8, 3), np.uint8)

    monkeypatch.setattr(prepare_module, "load_square", interrupt_on_third)
    code, _, err = run(capsys, mixed_folder, tmp_path / "prepared", "--resolution", 8)
    assert code == 130 and "interrupted" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src", "whole.png"]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_sigterm_or_sighup_during_prepare_leaves_nothing_behind(signum, code, mixed_folder, tmp_path, capsys, monkeypatch):
    """A scheduler's or kill's stop, or the terminal's hang-up: before 2026-12-05 (SIGHUP before
    2026-12-07) it left the hidden partial folder (60 MB for an audit's 3,000 images) and printed nothing."""
    calls = []

    def signalled_on_third(*args):
        calls.append(args)
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
        return np.zeros((8, 8, 3), np.uint8)

    monkeypatch.setattr(prepare_module, "load_square", signalled_on_third)
    got, _, err = run(capsys, mixed_folder, tmp_path / "prepared", "--resolution", 8)
    assert got == code and "interrupted" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src", "whole.png"]


def test_a_killed_prepares_partial_folder_is_removed_by_the_next_and_a_running_ones_kept(mixed_folder, tmp_path, capsys):
    """kill -9 (or a crash) leaves DST's hidden partial folder: later runs left it, a dataset's worth
    of disk (an audit's 3,000 images: 10 MB after 12 s) that nothing names."""
    from alae_tf.atomic_file import make_staging_folder

    killed = tmp_path / ".prepared.partial-1"
    make_staging_folder(killed).close()  # its process is gone: the lock is free
    (killed / "images-r03.tfrecords").write_bytes(b"half")
    running = tmp_path / ".prepared.partial-2"
    lock = make_staging_folder(running)  # held, as by a prepare running into the same DST
    try:
        code, _, err = run(capsys, mixed_folder, tmp_path / "prepared", "--resolution", 8)
        assert code == 0, err
        assert sorted(path.name for path in tmp_path.iterdir()) == [".prepared.partial-2", "prepared", "src", "whole.png"]
        assert not list((tmp_path / "prepared").glob(".*"))  # the lock stays out of the dataset
    finally:
        lock.close()


def test_a_full_disk_exits_2_with_one_line_and_leaves_nothing_behind(mixed_folder, tmp_path, capsys, monkeypatch):
    """The records' writer fails as TensorFlow's does on a full disk; it was a traceback. Every
    writer opened is closed."""
    opened, closed = [], []

    class FullDiskWriter:
        def __init__(self, path):
            self.path = path
            opened.append(path)

        def write(self, record):
            raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")

        def close(self):
            closed.append(self.path)

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
    code, out, err = run(capsys, mixed_folder, tmp_path / "prepared", "--resolution", 8)
    assert code == 2 and err.startswith("error: no space left on the disk, writing ") and err.count("\n") == 1
    assert err.endswith(f".tfrecords; nothing was written to {tmp_path / 'prepared'}: free some space and run the command again\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src", "whole.png"]
    assert opened and sorted(closed) == sorted(opened)


def test_a_dataset_larger_than_the_free_space_is_refused_before_writing(mixed_folder, tmp_path, capsys, monkeypatch):
    """A full disk was found only after hours of writing; the size is known from the image count."""
    prepare(mixed_folder, tmp_path / "measured", 16, verbose=False)
    files = [path for path in (tmp_path / "measured").iterdir() if path.suffix == ".tfrecords"]
    count = json.loads((tmp_path / "measured" / "meta.json").read_text())["num_images"]
    actual = sum(path.stat().st_size for path in files)
    estimate = prepare_module.dataset_bytes(count, 16, 3)
    assert actual <= estimate <= actual * 1.05  # pixels at 16, 8, 4 and each record's framing
    real_usage = prepare_module.shutil.disk_usage
    monkeypatch.setattr(prepare_module.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=estimate - 1))
    monkeypatch.setattr(prepare_module, "_write_records", lambda *args: pytest.fail("records written"))
    code, out, err = run(capsys, mixed_folder, tmp_path / "prepared", "--resolution", 16)
    assert code == 2 and f"{count} images at 16x16 and its lower levels take ~" in err and "GB free: free some space" in err
    assert not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("problem, message", [
    ("missing", "no such directory"),
    ("a file", "whole.png: a file, not a directory; SRC must be a folder of images"),
    ("empty", "no image files"),
    ("all broken", "none of the 1 image files can be read"),
    ("resolution 48", "--resolution must be a power of two >= 4 (4, 8, 16, ...), got 48"),
    ("resolution 2", "--resolution must be a power of two"),
    ("test count", "cannot hold out 8 of 8 images"),
    ("dst under a file", "out/prepared: cannot be created (Not a directory)"),
])
def test_bad_input_exits_2_with_one_error_line(mixed_folder, tmp_path, capsys, problem, message):
    src, resolution, extra, dst = mixed_folder, 8, [], tmp_path / "out"
    if problem == "missing":
        src = tmp_path / "nowhere"
    elif problem == "a file":
        src = tmp_path / "whole.png"
    elif problem == "empty":
        src = tmp_path / "empty"
        (src / "sub").mkdir(parents=True)
    elif problem == "all broken":
        src = tmp_path / "broken"
        src.mkdir()
        (src / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    elif problem.startswith("resolution"):
        resolution = int(problem.split()[1])
    elif problem == "dst under a file":
        (tmp_path / "out").write_text("a file")
        dst = tmp_path / "out" / "prepared"
    else:
        extra = ["--test-count", 8]
    code, out, err = run(capsys, src, dst, "--resolution", resolution, *extra)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() or (tmp_path / "out").read_text() == "a file"


def test_help_describes_the_tool(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--resolution" in out and "--mirror" in out and "LANCZOS" in out


def test_prepare_returns_the_meta_it_writes(mixed_folder, tmp_path):
    meta = prepare(mixed_folder, tmp_path / "p", 8, verbose=False)
    written = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert {key: meta[key] for key in written} == written
    assert meta["test_count"] == 0  # default min(1000, 10%) of 8 images


def test_a_record_is_serialized_with_its_features_in_key_order_by_hand():
    """The records' two features were serialized in an order that varied between processes, so a
    dataset prepared again from the same images had another fingerprint (data_contents.txt) and
    its run refused to resume ("the run's data changed"). The bytes, built by hand from the
    protobuf wire format: Example{features: Features{feature: map entries "data", then "shape"}}."""
    from alae_tf.data.files import encode_record

    def varint(n):
        out = b""
        while True:
            out += bytes([n & 0x7F | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    def field(number, payload):  # a length-delimited field
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    image = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    chw = image.transpose(2, 0, 1).tobytes()
    data = field(1, b"data") + field(2, field(1, field(1, chw)))  # Feature.bytes_list = 1
    shape = field(1, b"shape") + field(2, field(3, field(1, varint(3) + varint(4) + varint(4))))  # int64_list = 3
    assert encode_record(image) == field(1, field(1, data) + field(1, shape))


def test_a_prepared_dataset_has_a_fingerprint_that_changes_with_its_images_and_split(mixed_folder, tmp_path):
    """What a run records (data_contents.txt) to refuse a resume on other data: a dataset prepared
    again from the same folder keeps it (only meta.json's time differs); other images of the same
    count and size, or another held-out count, change it. It was recorded for image folders only."""
    def contents(src, dst, **options):
        prepare(src, dst, 8, verbose=False, overwrite=True, **options)
        return open_image_source("prepared", str(dst), 8).contents

    first = contents(mixed_folder, tmp_path / "d")
    assert first.startswith("8 images, ")
    assert contents(mixed_folder, tmp_path / "d") == first
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    (tmp_path / "d" / "meta.json").write_text(json.dumps({**meta, "created": "2001-01-01T00:00:00+00:00"}))
    assert open_image_source("prepared", str(tmp_path / "d"), 8).contents == first
    assert contents(mixed_folder, tmp_path / "d", test_count=3) != first
    other = tmp_path / "other"
    for index in range(8):
        save(other / f"{index}.png", random_rgb(40, 40))
    assert contents(other, tmp_path / "d").startswith("8 images, ") and contents(other, tmp_path / "d") != first
