"""Photos of handwritten digits made into MNIST's images (serving.digits, python -m alae_tf.align_digits),
checked by the shipped MNIST classifier: MNIST's own digits come out as themselves, and photos
made of them (dark or light ink, enlarged, anywhere on unevenly lit, grainy paper) are read as the
digits they show, where their centre crop is not."""

import io
import subprocess
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageFilter

from alae_tf import align_digits
from alae_tf.data import load_mnist
from alae_tf.metrics.mnist_classifier import accuracy, load_classifier
from serving import image_files
from serving.digits import DigitAligner, _stroke_width, mnist_digit
from serving.model_pixels import model_pixels

COUNT = 200


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def photo_of(digit: np.ndarray, rng: np.random.Generator, width=400, height=300) -> Image.Image:
    """An MNIST digit as a phone photo of a digit on paper might show it: enlarged 5-10x, anywhere,
    dark ink on light paper (or, one photo in four, chalk on a dark board), a light gradient, grain, blur."""
    size = round(28 * rng.uniform(5, 10))
    strokes = np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR), np.float32) / 255
    paper, ink = (rng.uniform(170, 240), rng.uniform(20, 80)) if rng.random() < 0.75 else (rng.uniform(20, 60),
                                                                                             rng.uniform(180, 240))
    rows, columns = np.mgrid[:height, :width]
    canvas = paper + rng.uniform(-30, 30) * (columns / width - 0.5) + rng.uniform(-30, 30) * (rows / height - 0.5)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    part = canvas[top:top + size, left:left + size]
    part[:] = part * (1 - strokes) + ink * strokes
    canvas += rng.normal(0, 6, canvas.shape)
    return Image.fromarray(np.uint8(np.clip(canvas, 0, 255)), "L").filter(ImageFilter.GaussianBlur(0.8))


def close_up_of(digit: np.ndarray, rng: np.random.Generator, width=400, height=300) -> Image.Image:
    """A close-up photo: the digit, in dark ink on light paper, 70-100% of the photo's height (a
    marker on a sticky note); its strokes are wider than a fixed window of the paper's level was."""
    rows, columns = np.flatnonzero(digit.max(1) > 30), np.flatnonzero(digit.max(0) > 30)
    box = digit[max(0, rows[0] - 2):rows[-1] + 3, max(0, columns[0] - 2):columns[-1] + 3]
    scale = rng.uniform(0.7, 1.0) * height / box.shape[0]
    size = (round(box.shape[1] * scale), round(box.shape[0] * scale))
    strokes = np.asarray(Image.fromarray(box).resize(size, Image.BILINEAR), np.float32) / 255
    rows, columns = np.mgrid[:height, :width]
    canvas = rng.uniform(170, 240) + rng.uniform(-30, 30) * (columns / width - 0.5) + rng.uniform(-30, 30) * (rows / height - 0.5)
    top, left = rng.integers(0, height - size[1] + 1), rng.integers(0, width - size[0] + 1)
    part = canvas[top:top + size[1], left:left + size[0]]
    part[:] = part * (1 - strokes) + rng.uniform(20, 80) * strokes
    canvas += rng.normal(0, 6, canvas.shape)
    return Image.fromarray(np.uint8(np.clip(canvas, 0, 255)), "L").filter(ImageFilter.GaussianBlur(0.8))


def min_filter(image: Image.Image, size: int) -> Image.Image:
    """PIL's ImageFilter.MinFilter(size), pixel for pixel (edges repeated), as two passes of a 1-d
    minimum: 5 ms a picture instead of 100-160."""
    pixels = np.pad(np.asarray(image), size // 2, mode="edge")
    pixels = sliding_window_view(pixels, size, axis=0).min(-1)
    return Image.fromarray(sliding_window_view(pixels, size, axis=1).min(-1))


def pen_photo_of(digit: np.ndarray, rng: np.random.Generator, width=400, height=300) -> Image.Image:
    """A digit written with a pen: enlarged 7-10x, its strokes eroded to 2-5% of its height
    (MNIST's are ~9% of their box), dark ink on light paper, as photo_of's."""
    size = round(28 * rng.uniform(7, 10))
    enlarged = Image.fromarray(digit).resize((size, size), Image.BILINEAR)
    eroded = min_filter(enlarged, 2 * int(rng.integers(5, 9)) + 1).filter(ImageFilter.GaussianBlur(1))
    strokes = np.asarray(eroded, np.float32) / 255
    rows, columns = np.mgrid[:height, :width]
    canvas = rng.uniform(170, 240) + rng.uniform(-30, 30) * (columns / width - 0.5) + rng.uniform(-30, 30) * (rows / height - 0.5)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    part = canvas[top:top + size, left:left + size]
    part[:] = part * (1 - strokes) + rng.uniform(20, 80) * strokes
    canvas += rng.normal(0, 6, canvas.shape)
    return Image.fromarray(np.uint8(np.clip(canvas, 0, 255)), "L").filter(ImageFilter.GaussianBlur(0.8))


def note_on_desk(digit: np.ndarray, rng: np.random.Generator, width=400, height=300) -> Image.Image:
    """A note (light paper, 45-75% of the photo's height) on a darker desk, the digit written on it
    in dark ink: the photo's border is the desk, not the paper."""
    rows, columns = np.mgrid[:height, :width]
    canvas = rng.uniform(30, 120) + rng.uniform(-20, 20) * (columns / width - 0.5) + rng.normal(0, 4, (height, width))
    side = round(height * rng.uniform(0.45, 0.75))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    canvas[top:top + side, left:left + side] = rng.uniform(170, 240) + rng.normal(0, 4, (side, side))
    size = round(side * rng.uniform(0.6, 0.9))
    strokes = np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR), np.float32) / 255
    top, left = top + rng.integers(0, side - size + 1), left + rng.integers(0, side - size + 1)
    part = canvas[top:top + size, left:left + size]
    part[:] = part * (1 - strokes) + rng.uniform(20, 80) * strokes
    return Image.fromarray(np.uint8(np.clip(canvas, 0, 255)), "L").filter(ImageFilter.GaussianBlur(0.8))


def paper_with_desk_at_edges(digit: np.ndarray, rng: np.random.Generator, width=400, height=300) -> Image.Image:
    """Paper filling most of the photo, a strip of darker desk along its top and left edges (up to
    40 and 60 pixels) and, one photo in two, along its bottom; the digit in dark ink on the paper."""
    canvas = np.full((height, width), rng.uniform(30, 110))
    top, left = rng.integers(0, 40), rng.integers(0, 60)
    canvas[top:height - rng.integers(0, 2) * 30, left:] = rng.uniform(170, 240)
    canvas += rng.normal(0, 4, canvas.shape)
    size = round(height * 0.55)
    strokes = np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR), np.float32) / 255
    row, column = rng.integers(top + 10, height - size - 30), rng.integers(left + 10, width - size - 10)
    part = canvas[row:row + size, column:column + size]
    part[:] = part * (1 - strokes) + rng.uniform(20, 80) * strokes
    return Image.fromarray(np.uint8(np.clip(canvas, 0, 255))).filter(ImageFilter.GaussianBlur(0.8))


def drawing_of(digit: np.ndarray, rng: np.random.Generator, side=280) -> Image.Image:
    """The digit as drawn on the studio's 280x280 canvas: pure white strokes on black, broad
    (20-40 pixels), drawn large (55-95% of the canvas) and not quite in its centre."""
    rows, columns = np.flatnonzero(digit.max(1) > 30), np.flatnonzero(digit.max(0) > 30)
    box = Image.fromarray(digit[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])
    scale = rng.uniform(0.55, 0.95) * side / max(box.size)
    width, height = max(1, round(box.width * scale)), max(1, round(box.height * scale))
    strokes = np.where(np.asarray(box.resize((width, height), Image.BILINEAR)) > 100, 255, 0)
    spare = np.array([side - height, side - width])
    top, left = np.clip(spare / 2 + rng.normal(0, spare / 4 + 1), 0, spare).astype(int)
    canvas = np.zeros((side, side), np.uint8)
    canvas[top:top + height, left:left + width] = strokes
    return Image.fromarray(canvas, "L")


def test_mnist_digits_come_out_as_themselves(mnist, classifier):
    """MNIST's digits are already in MNIST's box and centred: the recipe changes them only by resampling."""
    digits, labels = mnist.test_images[:COUNT], mnist.test_labels[:COUNT]
    again = np.stack([np.asarray(mnist_digit(Image.fromarray(digit))) for digit in digits])
    assert np.abs(again.astype(np.float32) - digits).mean() < 20  # measured 15.0 levels on 500
    assert accuracy(classifier, again, labels) >= accuracy(classifier, digits, labels) - 0.03  # 0.984 against 0.99 on 500


def test_digit_photos_are_read_as_their_digits_and_centre_crops_are_not(mnist, classifier):
    rng = np.random.default_rng(0)
    digits, labels = mnist.test_images[:COUNT], mnist.test_labels[:COUNT]
    photos = [photo_of(digit, rng) for digit in digits]
    made = [mnist_digit(photo) for photo in photos]
    assert all(image is not None and image.size == (28, 28) and image.mode == "L" for image in made)
    aligned = np.stack([np.asarray(image) for image in made])
    centre_cropped = np.stack([model_pixels(photo, (28, 28, 1))[0][..., 0] for photo in photos])
    assert accuracy(classifier, aligned, labels) >= 0.93  # 0.985 on 1,000 photos made as here (0.951 with a fixed window)
    assert accuracy(classifier, centre_cropped, labels) <= 0.45  # 0.276
    assert np.abs(aligned.astype(np.float32) - digits).mean() < 25  # 15.3 levels from the digit photographed (17.4 before)


@pytest.mark.parametrize("make", [close_up_of, drawing_of], ids=["close-up photos", "canvas drawings"])
def test_thick_strokes_stay_whole(make, mnist, classifier):
    """The paper's level is taken over a window three strokes wide: a fixed window (11 of 128
    pixels) took broad strokes for paper and hollowed them out (read right: close-ups 0.92, drawings
    0.43 here; now 1.0 and 0.99; on 1,000 each 0.890 and 0.440, now 0.985 and 0.985)."""
    rng = np.random.default_rng(4)
    digits, labels = mnist.test_images[:COUNT // 2], mnist.test_labels[:COUNT // 2]
    made = np.stack([np.asarray(mnist_digit(make(digit, rng))) for digit in digits])
    assert accuracy(classifier, made, labels) >= 0.95


def test_a_pens_thin_strokes_are_widened_to_mnists(mnist, classifier):
    rng = np.random.default_rng(7)
    digits, labels = mnist.test_images[:COUNT], mnist.test_labels[:COUNT]
    made = [mnist_digit(pen_photo_of(digit, rng)) for digit in digits]
    assert sum(image is None for image in made) <= 2  # 0 (15, faint ones, when the ink had to be 15% of white)
    made = np.stack([np.zeros((28, 28), np.uint8) if image is None else np.asarray(image) for image in made])
    widths = [_stroke_width(image / np.float32(255)) for image in made]
    assert accuracy(classifier, made, labels) >= 0.93  # 0.973 on 300 (0.870 with neither change)
    assert np.median(widths) >= 1.6  # 1.75 pixels (MNIST's 1.81; 1.28 not widened)


def test_a_note_on_a_darker_desk_is_read_on_the_note(mnist, classifier):
    """The border (the desk) says the ink is light: the note came out as a light square with a dark
    digit in it (read right 0.117 of 300); found as a sheet, the digit is looked for on it alone."""
    rng = np.random.default_rng(8)
    digits, labels = mnist.test_images[:COUNT // 2], mnist.test_labels[:COUNT // 2]
    made = np.stack([np.asarray(mnist_digit(note_on_desk(digit, rng))) for digit in digits])
    assert accuracy(classifier, made, labels) >= 0.9  # 0.933 on 1,000
    assert mnist_digit(note_on_desk(np.zeros((28, 28), np.uint8), rng)) is None  # a blank note


def test_paper_with_a_strip_of_desk_along_its_edges_is_read_on_the_paper(mnist, classifier):
    """A border of both paper and desk: the photo is cut to the rows and columns mostly of the
    middle's level first (read right 0.135 of 200 before; the desk strip was taken for ink)."""
    rng = np.random.default_rng(9)
    digits, labels = mnist.test_images[:COUNT // 2], mnist.test_labels[:COUNT // 2]
    made = [mnist_digit(paper_with_desk_at_edges(digit, rng)) for digit in digits]
    made = np.stack([np.zeros((28, 28), np.uint8) if image is None else np.asarray(image) for image in made])
    assert accuracy(classifier, made, labels) >= 0.9  # 0.981 on 1,000


@pytest.mark.parametrize("grain", [2, 6, 16])
def test_blank_paper_and_a_flat_colour_hold_no_digit(grain):
    """Blank paper, grainy, blurred, unevenly lit, as a JPEG: its grain is not ink (the ink's level
    had to be 15% of white: 12 of 108 such pages were read as a digit, 28 once the window was three
    strokes wide; now it has to stand 6 of the grain's spreads above the paper's level)."""
    rng = np.random.default_rng(grain)
    rows, columns = np.mgrid[:300, :400]
    for blur in (0, 0.8, 2):
        for light in (0, 40, 80):
            paper = 190 + light * (columns / 400 - 0.5) + light / 2 * (rows / 300 - 0.5) + rng.normal(0, grain, (300, 400))
            page = Image.fromarray(np.uint8(np.clip(paper, 0, 255))).filter(ImageFilter.GaussianBlur(blur))
            assert mnist_digit(page) is None, (blur, light)
            assert mnist_digit(Image.open(io.BytesIO(png_bytes(page, "JPEG")))) is None, (blur, light, "JPEG")
    assert mnist_digit(Image.new("RGB", (50, 40), (30, 90, 200))) is None


def test_the_size_of_other_mnist_models(mnist):
    """A 32x32 MNIST model (mnist_style32): the digit in a box of 20/28 of 32, centred."""
    image = np.asarray(mnist_digit(Image.fromarray(mnist.test_images[0]), side=32), np.float32)
    rows, columns = np.nonzero(image > 64)
    assert image.shape == (32, 32) and max(np.ptp(rows), np.ptp(columns)) + 1 <= 23
    rows, columns = np.mgrid[:32, :32]
    centre = ((rows * image).sum() / image.sum(), (columns * image).sum() / image.sum())
    np.testing.assert_allclose(centre, (15.5, 15.5), atol=0.75)


def test_the_command_writes_each_photos_digit_and_names_the_blank_ones(mnist, tmp_path, capsys):
    rng = np.random.default_rng(2)
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    photo_of(mnist.test_images[0], rng).save(photos / "seven.jpg", quality=90)
    photo_of(mnist.test_images[1], rng).convert("RGB").save(photos / "more" / "two.png")
    Image.new("L", (200, 100), 230).save(photos / "blank.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert align_digits.main([str(photos), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == \
        ["more/two.png", "seven.png"]
    assert Image.open(tmp_path / "out" / "seven.png").size == (28, 28)
    assert "blank.png: no digit found (nothing darker or lighter than the paper" in captured.err
    assert "broken.jpg: skipped: " in captured.err
    assert captured.out.splitlines()[-1] == (f"2 digit(s) of 28x28 written to {tmp_path / 'out'}; no digit found in "
                                             "1 photo(s); 1 file(s) could not be read")
    assert align_digits.main([str(photos / "blank.png"), "--out", str(tmp_path / "none"), "--size", "32"]) == 2
    assert capsys.readouterr().err.endswith("error: no digit was found in any of the photos\n")
    assert align_digits.main([str(photos), "--out", str(photos / "out")]) == 2  # a second run would read them
    assert "is inside" in capsys.readouterr().err and not (photos / "out").exists()


def test_the_command_runs_without_importing_tensorflow(mnist, tmp_path):
    from test_tensorflow_start import REPO, heavy_imports

    photo_of(mnist.test_images[0], np.random.default_rng(3)).save(tmp_path / "seven.png")
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "alae_tf.align_digits", str(tmp_path / "seven.png"),
                             "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and heavy_imports(result) == [], result.stderr[-2000:]
    assert (tmp_path / "out" / "seven.png").is_file()


def png_bytes(image: Image.Image, format="PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def test_an_image_read_with_the_digit_aligner_is_its_digit_framed(mnist, export_dir):
    """serving.image_files (the studio's uploads) and the app API's read_image: the digit as
    mnist_digit frames it, the note saying so; a blank page is refused as having no digit."""
    from serving.onnx_model import ALAEOnnx

    photo = photo_of(mnist.test_images[0], np.random.default_rng(5)).convert("RGB")
    expected = np.asarray(mnist_digit(photo.convert("L")))[..., np.newaxis]
    image, note = image_files.model_image(png_bytes(photo), (28, 28, 1), aligner=DigitAligner())
    np.testing.assert_array_equal(image, expected)
    assert note == "PNG 400x300: its digit framed as MNIST's (28x28), converted from RGB to grayscale"
    blank = png_bytes(Image.new("L", (300, 200), 225))
    with pytest.raises(image_files.ImageFileError, match="^no digit found in the upload [(]nothing darker") as refused:
        image_files.model_image(blank, (28, 28, 1), aligner=DigitAligner())
    assert refused.value.problem == image_files.NOTHING_FOUND

    model = ALAEOnnx(export_dir)
    np.testing.assert_array_equal(model.read_image(png_bytes(photo), aligner=DigitAligner()), expected)
    np.testing.assert_array_equal(model.read_image(png_bytes(photo)), model_pixels(photo, (28, 28, 1))[0])  # no aligner
    with pytest.raises(ValueError, match="^no digit found in the image"):
        model.read_image(blank, aligner=DigitAligner())


def test_the_studio_frames_uploaded_photos_and_drawings_as_mnist_digits(mnist, export_dir):
    from exported_run import http_server
    from test_studio_api import pixels, request, upload

    rng = np.random.default_rng(6)
    photo, drawing = photo_of(mnist.test_images[1], rng), drawing_of(mnist.test_images[2], rng)
    with http_server(export_dir, "--studio", "--align-digits") as url:
        status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
        assert status == 200 and info["aligns_uploads"] == DigitAligner.description
        assert info["can_draw"] is True  # the canvas's drawings are framed as photos are
        status, answer = upload(url, png_bytes(photo, "JPEG"))
        assert status == 200 and answer["note"] == "JPEG 400x300: its digit framed as MNIST's (28x28)", answer
        decoded = Image.open(io.BytesIO(png_bytes(photo, "JPEG")))
        np.testing.assert_array_equal(pixels(answer["input"])[..., 0], np.asarray(mnist_digit(decoded)))
        status, answer = upload(url, png_bytes(drawing))
        assert status == 200 and answer["note"] == "PNG 280x280: its digit framed as MNIST's (28x28)", answer
        framed = pixels(answer["input"])[..., 0]
        np.testing.assert_array_equal(framed, np.asarray(mnist_digit(drawing)))
        rows, columns = np.nonzero(framed > 64)
        assert max(np.ptp(rows), np.ptp(columns)) + 1 <= 21  # in MNIST's 20x20 box, not the whole 28x28
        status, answer = upload(url, png_bytes(Image.new("L", (280, 280), 0)))  # an empty canvas
        assert status == 422 and "no digit found in the upload" in answer["error"], answer
    with http_server(export_dir, "--studio") as url:  # without it: resized whole, as training reads files
        status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
        assert info["aligns_uploads"] is None and info["can_draw"] is True
        status, answer = upload(url, png_bytes(drawing))
        assert answer["note"] == "PNG 280x280: resized to 28x28", answer
        np.testing.assert_array_equal(pixels(answer["input"]), model_pixels(drawing, (28, 28, 1))[0])


def test_the_servers_start_lines_say_what_the_studio_does_to_uploads():
    from serving.http.__main__ import uploads_line

    assert uploads_line(DigitAligner(), 1) == f"the studio's uploads: {DigitAligner.description}"
    assert uploads_line(None, 1) == ("the studio's uploads and drawings are centre-cropped and resized whole "
                                     "(--align-digits frames a handwritten digit as MNIST's digits are)")
    assert uploads_line(None, 3).endswith("(--align-faces cuts a photo to its face instead)")


@pytest.mark.parametrize("argv, message", [
    (["--align-digits"], "--align-digits goes with --studio"),
    (["--studio", "--align-digits", "--align-faces", "ffhq"], "argument --align-faces: not allowed with argument --align-digits"),
])
def test_the_servers_digit_option_is_refused_where_it_does_not_apply(argv, message, export_dir, capsys):
    from serving.http import __main__ as server_cli

    with pytest.raises(SystemExit) as exit_info:
        server_cli.main(["--model", str(export_dir), "--port", "0", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
