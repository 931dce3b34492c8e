"""The projection file (serving/projection_file.py): what `write` stores `read` gives back, and
`read` refuses archives that would unpack to more than it allows before reading them."""

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from serving import projection_file


def sample_projection(noise=True) -> projection_file.ProjectionFile:
    rng = np.random.default_rng(3)
    distances = {name: rng.random(2, dtype=np.float32) for name in projection_file.DISTANCES}
    return projection_file.ProjectionFile(
        styles=rng.standard_normal((2, 4, 8)).astype(np.float32),
        images=rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8), distances=distances, per_layer=True,
        run="my run", checkpoint="ckpt-40", training_step=40,
        noise=[rng.standard_normal((2, 4, 4, 1)).astype(np.float32), rng.standard_normal((2, 8, 8, 1)).astype(np.float32)]
        if noise else [])


def written(projection) -> bytes:
    buffer = io.BytesIO()
    projection_file.write(buffer, projection)
    return buffer.getvalue()


@pytest.mark.parametrize("noise", [True, False])
def test_read_gives_back_what_write_stored(noise):
    original = sample_projection(noise)
    back = projection_file.read(written(original))
    for name in ("styles", "images"):
        np.testing.assert_array_equal(getattr(back, name), getattr(original, name))
        assert getattr(back, name).dtype == getattr(original, name).dtype
    assert back.distances.keys() == original.distances.keys()
    for name, values in original.distances.items():
        np.testing.assert_array_equal(back.distances[name], values)
    assert (back.per_layer, back.run, back.checkpoint, back.training_step) == (True, "my run", "ckpt-40", 40)
    assert len(back.noise) == len(original.noise) and len(back) == 2
    for got, expected in zip(back.noise, original.noise):
        np.testing.assert_array_equal(got, expected)


def test_a_write_that_fails_leaves_the_earlier_file_and_no_partial_one(tmp_path, monkeypatch):
    """A full disk mid-write: the file written before stays whole and nothing else is left (the
    serving side's writers left their .tmp file behind until 2026-12-05, a code review found). The
    directions file writes through the same serving.atomic_write.replacing."""
    import errno
    import os

    from serving.editing import Direction, DirectionSet

    path = tmp_path / "projection.npz"
    projection_file.write(path, sample_projection())
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        projection_file.write(path, sample_projection(noise=False))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["projection.npz"]
    monkeypatch.undo()

    directions = tmp_path / "directions.json"
    DirectionSet(2, (Direction("a", np.array([1.0, 0.0], np.float32), {}),)).write(directions)
    def half_written(file, text, *args, **kwargs):
        with open(file, "w") as opened:
            opened.write(text[:5])
        full_disk()

    monkeypatch.setattr(Path, "write_text", half_written)
    with pytest.raises(OSError, match="No space left"):
        DirectionSet(2, (Direction("b", np.array([0.0, 1.0], np.float32), {}),)).write(directions)
    assert '"a"' in directions.read_text() and sorted(p.name for p in tmp_path.iterdir()) == ["directions.json", "projection.npz"]


def test_an_archive_that_unpacks_beyond_the_limit_is_refused_before_it_is_read(monkeypatch):
    data = written(sample_projection())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    monkeypatch.setattr(projection_file, "MAX_UNPACKED_BYTES", unpacked - 1)
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("np.load was reached"))
    with pytest.raises(projection_file.ProjectionFileError, match="the archive unpacks to 0 MiB, above the 0 MiB"):
        projection_file.read(data)


def archive(members: dict, compression=zipfile.ZIP_STORED) -> bytes:
    """An .npz of raw member bytes {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zipped:
        for name, content in members.items():
            zipped.writestr(name, content)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_array_header_declaring_more_than_its_member_holds_is_refused_before_numpy_allocates_it(monkeypatch):
    """A 300-byte file whose styles.npy header claims a 40 TB array: refused from the header, where
    numpy would try to allocate the array first (MemoryError, a 500 on the studio's upload)."""
    header = npy(np.zeros((1, 1, 1), np.float32))[:-4].replace(b"(1, 1, 1)", b"(10000000, 1000000, 1)")
    data = archive({"styles.npy": header + b"\0" * 16})
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("np.load was reached"))
    with pytest.raises(projection_file.ProjectionFileError,
                       match=re.escape("styles.npy declares a float32 array of shape [10000000, 1000000, 1] "
                                       "(40000000000000 bytes), more than the member's")):
        projection_file.read(data)


def test_a_compressed_archive_that_expands_far_beyond_its_size_is_refused_before_it_is_read(monkeypatch):
    good = written(sample_projection())
    with zipfile.ZipFile(io.BytesIO(good)) as original:
        members = {info.filename: original.read(info) for info in original.infolist()}
    members["images.npy"] = npy(np.zeros((2, 1024, 1024, 1), np.uint8))  # 2 MiB of zeros, a few kB deflated
    bomb = archive(members, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2**20 / projection_file.MAX_EXPANSION
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("np.load was reached"))
    with pytest.raises(projection_file.ProjectionFileError, match=r"unpacks to 2\.0 MiB from 0\.0 MiB; .*uncompressed.* 4x is refused"):
        projection_file.read(bomb)


def test_a_deflated_copy_of_a_real_file_still_reads():
    """Compression itself is not refused: a file that expands little (random images) reads back."""
    original = sample_projection()
    good = written(original)
    with zipfile.ZipFile(io.BytesIO(good)) as stored:
        members = {info.filename: stored.read(info) for info in stored.infolist()}
    back = projection_file.read(archive(members, zipfile.ZIP_DEFLATED))
    np.testing.assert_array_equal(back.styles, original.styles)


def test_a_non_finite_style_or_a_wrong_shape_is_refused():
    good = sample_projection()
    bad_styles = good.styles.copy()
    bad_styles[1, 2, 3] = np.nan
    with pytest.raises(projection_file.ProjectionFileError, match="styles hold NaN or infinite values"):
        projection_file.read(written(projection_file.ProjectionFile(**{**good.__dict__, "styles": bad_styles})))
    with pytest.raises(projection_file.ProjectionFileError, match=r"images must be uint8 \[2, H, W, C\], got uint8 \[1, 8, 8, 1\]"):
        projection_file.read(written(projection_file.ProjectionFile(**{**good.__dict__, "images": good.images[:1]})))


def test_noise_images_must_be_finite_float32_one_per_image():
    """A file with NaN noise was read at the server's start, and every request using it was then
    answered 400 as the client's fault (a security audit)."""
    good = sample_projection()
    nan_noise = good.noise[1].copy()
    nan_noise[0, 3, 3, 0] = np.inf
    for noise, message in (([good.noise[0], nan_noise], "noise_01 holds NaN or infinite values"),
                           ([good.noise[0].astype(np.float64), good.noise[1]], r"noise_00 must be float32 \[2, h, w, 1\], got float64"),
                           ([good.noise[0][:1], good.noise[1]], r"noise_00 must be float32 \[2, h, w, 1\], got float32 \[1, 4, 4, 1\]")):
        with pytest.raises(projection_file.ProjectionFileError, match=message):
            projection_file.read(written(projection_file.ProjectionFile(**{**good.__dict__, "noise": noise})))


def test_an_archive_of_more_members_than_a_projection_holds_is_refused_before_they_are_read():
    """150,000 empty members beside a valid projection cost 8 s of a server worker per upload."""
    buffer = io.BytesIO(written(sample_projection()))
    with zipfile.ZipFile(buffer, "a") as archive:
        for index in range(projection_file.MAX_MEMBERS):
            archive.writestr(f"extra{index}.txt", b"")
    with pytest.raises(projection_file.ProjectionFileError,
                       match=f"the archive holds {projection_file.MAX_MEMBERS + 12} members; a projection file holds at most "
                             f"{projection_file.MAX_MEMBERS}"):
        projection_file.read(buffer.getvalue())
    assert projection_file.MAX_MEMBERS >= 12 + 18  # a 1024x1024 generator's 18 noise images fit


def test_distances_must_be_one_float_per_image():
    good = sample_projection()
    for bad, shown in ((np.array(["a", "b"]), "<U1 [2]"), (np.zeros(3, np.float32), "float32 [3]")):
        distances = {**good.distances, "mse": bad}
        with pytest.raises(projection_file.ProjectionFileError, match=re.escape(f"mse must hold one number per image (2), got {shown}")):
            projection_file.read(written(projection_file.ProjectionFile(**{**good.__dict__, "distances": distances})))


def test_max_images_is_what_a_readable_file_holds(monkeypatch):
    """Per image of sample_projection's shapes, by hand: styles 4 x 8 float32 (128 bytes), an 8x8x1
    uint8 image (64), four float32 distances (16) and, with the noise, 4x4 + 8x8 float32 (320)."""
    with_noise, without_noise = 128 + 64 + 16 + 320, 128 + 64 + 16
    monkeypatch.setattr(projection_file, "MAX_UNPACKED_BYTES", projection_file.HEADERS_AND_ABOUT_BYTES + 10 * with_noise + 100)
    shapes = dict(num_styles=4, latent_dim=8, image_shape=(8, 8, 1))
    assert projection_file.max_images(**shapes, noise_shapes=[(4, 4, 1), (8, 8, 1)]) == 10
    assert projection_file.max_images(**shapes) == (10 * with_noise + 100) // without_noise

    def of(count, noise=True):
        one = sample_projection(noise)
        rows = lambda array: np.concatenate([array] * count)[:count]  # noqa: E731
        return projection_file.ProjectionFile(rows(one.styles), rows(one.images), {k: rows(v) for k, v in one.distances.items()},
                                              one.per_layer, one.run, one.checkpoint, one.training_step, [rows(n) for n in one.noise])

    def unpacked(data):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist())

    ten, eleven = written(of(10)), written(of(11))
    assert len(projection_file.read(ten)) == 10  # within the limit
    assert unpacked(eleven) - unpacked(ten) == with_noise  # the formula's bytes are the file's
    assert unpacked(ten) - 10 * with_noise < projection_file.HEADERS_AND_ABOUT_BYTES
    assert unpacked(written(of(11, noise=False))) - unpacked(written(of(10, noise=False))) == without_noise


def test_a_write_into_a_read_only_folder_names_the_file_asked_for(tmp_path, monkeypatch):
    """The partial file's name (PATH.PID.partial) is an implementation detail: the error names PATH
    (a read-only folder, as the OS refuses it: root writes anywhere, so open refuses it here)."""
    import builtins
    import errno
    import os

    real_open = builtins.open

    def read_only_folder(file, *args, **kwargs):
        if str(file).endswith(".partial"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_folder)
    with pytest.raises(OSError) as raised:
        projection_file.write(tmp_path / "p.npz", sample_projection())
    assert raised.value.filename == str(tmp_path / "p.npz") and raised.value.errno == errno.EROFS
