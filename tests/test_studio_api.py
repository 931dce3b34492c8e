"""The studio's JSON API (python -m serving.http --studio, in a subprocess where TensorFlow cannot
be imported): answers equal ALAEOnnx's for the same request, uploads are fitted to the model's
size with a note, bad requests get a 4xx JSON error naming the problem, the server's limits apply."""

import base64
import http.client
import io
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from exported_run import DIRECTIONS, assert_close_images, http_server, real_images
from PIL import Image
from prefix_proxy import prefix_proxy

from serving.http.studio_api import Studio
from serving.onnx_model import ALAEOnnx

MAX_BATCH = 4
MAX_BODY_MB = 0.05  # uploads up to 52428 bytes
READ_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def mlp(export_dir):
    with http_server(export_dir, "--studio", "--max-batch", str(MAX_BATCH), "--max-body-mb", str(MAX_BODY_MB),
                     "--max-requests", "1", "--read-timeout", str(READ_TIMEOUT)) as url:
        yield url, ALAEOnnx(export_dir)


@pytest.fixture(scope="module")
def style(style_exported):
    export_dir = style_exported[1]
    with http_server(export_dir, "--studio") as url:
        yield url, ALAEOnnx(export_dir)


def request(base_url, method, path, body=b"", content_type="application/json", headers=None):
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if kind.startswith("application/json") else raw, response.headers
    finally:
        connection.close()


def post(base_url, endpoint, body):
    status, answer, _ = request(base_url, "POST", f"/studio/api/{endpoint}", json.dumps(body).encode())
    return status, answer


def upload(base_url, data: bytes):
    status, answer, _ = request(base_url, "POST", "/studio/api/upload", data, content_type="application/octet-stream")
    return status, answer


def pixels(data_url: str) -> np.ndarray:
    """A PNG data URL's image as uint8 [H, W, C]."""
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))
    array = np.asarray(image)
    return array[:, :, np.newaxis] if array.ndim == 2 else array


def file_bytes(array: np.ndarray, image_format="PNG", mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=image_format)
    return buffer.getvalue()


def test_info_names_the_exports_directions_and_ranges(mlp):
    url, model = mlp
    status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
    assert status == 200
    assert [d["name"] for d in info["directions"]] == list(DIRECTIONS) == model.directions.names
    for entry, direction in zip(info["directions"], model.directions.directions):
        assert entry["max_strength"] == round(2 * direction.info["class_distance"], 2) > 0
    assert info["image_shape"] == [28, 28, 1] and info["latent_dim"] == 50 and info["num_styles"] == 1
    assert info["can_draw"] is True and info["opens_projections"] is True and info["can_edit"] is True
    assert info["interpolation_steps"]["max"] == MAX_BATCH


def test_sample_defaults_to_the_runs_psi_or_0_7_for_older_exports(mlp):
    """The page's psi slider and a sample without psi once used 0.7 whatever the run's grids used
    (1, no truncation, for the MNIST presets)."""
    url, model = mlp
    assert model.metadata["truncation_psi"] == 1.0  # the run's train.truncation_psi
    status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
    assert status == 200 and info["truncation_psi"]["default"] == 1.0
    status, sample = post(url, "sample", {"seed": 5})
    assert status == 200
    np.testing.assert_array_equal(pixels(sample["input"]), model.generate(n=1, seed=5, truncation_psi=1.0, as_uint8=True)[0])
    assert not np.array_equal(pixels(sample["input"]), model.generate(n=1, seed=5, truncation_psi=0.7, as_uint8=True)[0])
    older = ALAEOnnx(model.path)
    del older.metadata["truncation_psi"]
    assert Studio(older, MAX_BATCH).info()["truncation_psi"]["default"] == 0.7
    older.metadata["truncation_psi"] = 3.0  # beyond the slider's [0, 2]: its end
    assert Studio(older, MAX_BATCH).info()["truncation_psi"]["default"] == 2.0


def test_sample_upload_edit_interpolate_match_the_app_api(mlp):
    url, model = mlp
    status, sample = post(url, "sample", {"seed": 11, "truncation_psi": 0.5})
    assert status == 200
    np.testing.assert_array_equal(pixels(sample["input"]), model.generate(n=1, seed=11, truncation_psi=0.5, as_uint8=True)[0])
    w = np.asarray(sample["w"], np.float32)
    assert_close_images(w[np.newaxis], model.encode(pixels(sample["input"])[np.newaxis]), "w of the sample")
    assert_close_images(pixels(sample["reconstruction"])[np.newaxis], model.reconstruct(pixels(sample["input"])[np.newaxis], as_uint8=True),
                        "reconstruction of the sample")

    digit = real_images(1)[0]
    status, uploaded = upload(url, file_bytes(digit[:, :, 0]))
    assert status == 200 and uploaded["note"] == "PNG 28x28: used as it is"
    np.testing.assert_array_equal(pixels(uploaded["input"]), digit)
    name, strength = DIRECTIONS[1], -0.75
    status, edited = post(url, "edit", {"w": uploaded["w"], "edits": [{"direction": name, "strength": strength}], "layers": "all"})
    assert status == 200
    expected = model.edit(digit[np.newaxis], name, strength, "all", as_uint8=True)
    assert_close_images(pixels(edited["image"])[np.newaxis], expected, "edit")
    status, unedited = post(url, "edit", {"w": uploaded["w"], "edits": []})
    assert status == 200 and np.abs(pixels(unedited["image"]).astype(int) - expected[0]).max() > 10  # the edit shows
    both = [{"direction": DIRECTIONS[0], "strength": 0.5}, {"direction": DIRECTIONS[1], "strength": 0.25}]
    status, twice = post(url, "edit", {"w": uploaded["w"], "edits": both})
    vectors = [model.directions.vector(d) for d in DIRECTIONS]
    moved = model.encode(digit[np.newaxis]) + 0.5 * vectors[0] + 0.25 * vectors[1]
    assert status == 200
    assert_close_images(pixels(twice["image"])[np.newaxis], model.decode(moved, as_uint8=True), "two edits")

    status, path = post(url, "interpolate", {"w_a": sample["w"], "w_b": uploaded["w"], "steps": 3})
    assert status == 200 and len(path["images"]) == 3
    expected = model.interpolate(pixels(sample["input"]), digit, steps=3, as_uint8=True)
    assert_close_images(np.stack([pixels(image) for image in path["images"]]), expected, "interpolation")


def upload_projection(base_url, data: bytes, index=None):
    path = "/studio/api/upload" + ("" if index is None else f"?index={index}")
    status, answer, _ = request(base_url, "POST", path, data, content_type="application/octet-stream")
    return status, answer


def test_a_projection_file_opens_as_its_projected_codes(mlp, exported, tmp_path):
    """python -m alae_tf.project's file (TensorFlow) opened by the studio (ONNX Runtime): the image
    picked by index, its projected w, G of it as TensorFlow rendered it (not the encoder's
    reconstruction), and edits and interpolations of that w as the app API gives them."""
    from alae_tf import project as project_cli
    from serving import editing

    url, model = mlp
    digits = real_images(2)
    for index, digit in enumerate(digits):
        Image.fromarray(digit[:, :, 0]).save(tmp_path / f"{index}.png")
    out = tmp_path / "projection"
    assert project_cli.main(["--run", str(exported[0]), "--images", str(tmp_path / "0.png"), str(tmp_path / "1.png"),
                             "--steps", "6", "--learning-rate", "0.05", "--mse-weight", "0.1", "--out-dir", str(out)]) == 0
    saved = np.load(out / "projection.npz")
    grid = np.asarray(Image.open(out / "projection.png"))  # per image: the image | G(E(x)) | the projection
    tensorflow_projection, encoder_reconstruction = grid[28:56, 56:84, np.newaxis], grid[28:56, 28:56, np.newaxis]

    status, opened = upload_projection(url, (out / "projection.npz").read_bytes(), index=1)
    assert status == 200 and opened["count"] == 2, opened
    np.testing.assert_array_equal(pixels(opened["input"]), digits[1])
    np.testing.assert_array_equal(np.asarray(opened["w"], np.float32), saved["styles"][1, 0])  # one w: a flat list
    shown = pixels(opened["reconstruction"])
    assert_close_images(shown[np.newaxis], tensorflow_projection[np.newaxis], "the projection as TensorFlow rendered it")
    assert np.abs(shown.astype(int) - encoder_reconstruction).max() > 10  # not G(E(x))
    assert opened["note"] == (f"image 2 of 2 of a projection (one w): LPIPS {saved['lpips'][1]:.3f}, MSE {saved['mse'][1]:.4f} "
                              f"(the encoder alone: {saved['encoder_lpips'][1]:.3f}, {saved['encoder_mse'][1]:.4f})")

    name, strength = DIRECTIONS[0], 0.5
    status, edited = post(url, "edit", {"w": opened["w"], "edits": [{"direction": name, "strength": strength}]})
    moved = editing.edit_styles(saved["styles"][1:2], model.directions.vector(name), strength, 0, 1, 1)
    assert status == 200
    assert_close_images(pixels(edited["image"])[np.newaxis], model.decode_styles(moved, as_uint8=True), "edit of the projection")
    first = upload_projection(url, (out / "projection.npz").read_bytes())[1]  # index 0 by default
    np.testing.assert_array_equal(pixels(first["input"]), digits[0])
    status, path = post(url, "interpolate", {"w_a": first["w"], "w_b": opened["w"], "steps": 3})
    w_a, w_b = saved["styles"][0:1, 0], saved["styles"][1:2, 0]
    expected = model.decode(w_a + np.linspace(0, 1, 3, dtype=np.float32)[:, np.newaxis] * (w_b - w_a), as_uint8=True)
    assert status == 200
    assert_close_images(np.stack([pixels(image) for image in path["images"]]), expected, "interpolation of projections")


def projection_bytes(styles, images, **about) -> bytes:
    from serving import projection_file

    count = len(styles)
    distances = {name: np.linspace(0.1, 0.2, count, dtype=np.float32) for name in projection_file.DISTANCES}
    fields = {"per_layer": True, "run": "run", "checkpoint": "ckpt-1", "training_step": 1, "noise": [], **about}
    buffer = io.BytesIO()
    projection_file.write(buffer, projection_file.ProjectionFile(styles, images, distances, **fields))
    return buffer.getvalue()


def test_a_per_layer_projection_edits_mixes_and_interpolates_in_w_plus(style):
    """w+ (one w per style input) travels as num_styles lists: edits, mixes and interpolations
    keep each style input's own code. The note says when the file comes from another checkpoint,
    and that an upload's refined noise is not used."""
    from serving import editing

    url, model = style
    latent, num_styles = model.latent_dim, model.num_styles
    styles = np.random.default_rng(0).standard_normal((3, num_styles, latent)).astype(np.float32)
    images = model.decode_styles(styles, as_uint8=True)[::-1].copy()  # any images of the model's shape
    noise = [np.zeros((3, *shape), np.float32) for shape in model.noise_shapes]
    data = projection_bytes(styles, images, run="elsewhere", checkpoint="ckpt-7", training_step=7, noise=noise)

    status, opened = upload_projection(url, data, index=2)
    assert status == 200 and np.shape(opened["w"]) == (num_styles, latent), opened
    np.testing.assert_array_equal(pixels(opened["input"]), images[2])
    np.testing.assert_array_equal(pixels(opened["reconstruction"]), model.decode_styles(styles[2:3], as_uint8=True)[0])
    metadata = model.metadata
    assert opened["note"].split("; ")[1:] == [
        f"projected with elsewhere's ckpt-7 (step 7), while this export is {metadata['run']}'s {metadata['checkpoint']} "
        f"(step {metadata['training_step']}): it may reconstruct less well here",
        "its refined noise images are not used for an upload (open the file on the server, python -m serving.http "
        "--projections, to use them)"]
    assert opened["note"].startswith("image 3 of 3 of a projection (w+, one w per style input): LPIPS 0.200")

    status, unedited = post(url, "edit", {"w": opened["w"], "edits": []})
    assert status == 200 and pixels(unedited["image"]).tolist() == pixels(opened["reconstruction"]).tolist()
    sample = post(url, "sample", {"seed": 4})[1]
    w = np.asarray(sample["w"], np.float32)[np.newaxis]
    start, stop = model.layer_ranges["coarse"]
    status, mixed = post(url, "mix", {"destination_w": opened["w"], "source_w": sample["w"], "layers": "coarse"})
    assert status == 200
    expected = model.decode_styles(editing.mix_styles(styles[2:3], w, start, stop, num_styles), as_uint8=True)
    assert_close_images(pixels(mixed["image"])[np.newaxis], expected, "w+ with a sample's coarse styles")
    status, path = post(url, "interpolate", {"w_a": opened["w"], "w_b": sample["w"], "steps": 4})
    a, b = styles[2:3], editing.as_styles(w, num_styles)
    t = np.linspace(0, 1, 4, dtype=np.float32)[:, np.newaxis, np.newaxis]
    assert status == 200
    assert_close_images(np.stack([pixels(image) for image in path["images"]]), model.decode_styles(a + t * (b - a), as_uint8=True),
                        "interpolation from w+ to w")
    status, answer = post(url, "edit", {"w": [[0.0] * latent] * (num_styles - 1), "edits": []})
    assert status == 400 and answer["error"] == (f"w must be a list of {latent} numbers (a latent code w from sample or upload), "
                                                 f"or {num_styles} such lists (w+ from a projection)")


def test_bad_projection_files_are_400_naming_the_problem(mlp):
    url, _ = mlp
    digits, styles = real_images(2), np.zeros((2, 1, 50), np.float32)
    assert upload_projection(url, projection_bytes(styles, digits), index=1)[0] == 200
    for index in (2, -1, "x"):
        status, answer = upload_projection(url, projection_bytes(styles, digits), index=index)
        assert (status, answer["error"]) == (400, f"index '{index}' is not one of the file's 2 image(s) (0 to 1)")
    status, answer = upload_projection(url, projection_bytes(np.zeros((2, 4, 8), np.float32), np.zeros((2, 8, 8, 1), np.uint8)))
    assert status == 400 and answer["error"] == ("the projection's styles are [4, 8] and its images [8, 8, 1]; this model's are "
                                                 "[1, 50] and [28, 28, 1]: it was projected with another model")
    prefix = "the upload starts as a zip archive (a projection.npz) but is not a usable one: "
    older = io.BytesIO()  # as python -m alae_tf.project wrote it before the images were kept
    np.savez(older, styles=styles, lpips=np.zeros(2), mse=np.zeros(2), encoder_lpips=np.zeros(2), encoder_mse=np.zeros(2))
    status, answer = upload_projection(url, older.getvalue())
    assert (status, answer["error"]) == (400, prefix + "this projection.npz was written before 2026-12-04 and holds no "
                                                       "images; run python -m alae_tf.project again")
    pickled = io.BytesIO()
    np.savez(pickled, styles=np.array([{"a": 1}], dtype=object))
    status, answer = upload_projection(url, pickled.getvalue())
    assert status == 400 and answer["error"].startswith(prefix + "not a readable .npz archive (Object arrays cannot be loaded"), answer
    status, answer = upload_projection(url, b"PK\x03\x04" + bytes(100))
    assert status == 400 and answer["error"].startswith(prefix + "not a readable .npz archive"), answer
    other = io.BytesIO()
    np.savez(other, weights=np.zeros(3))
    status, answer = upload_projection(url, other.getvalue())
    assert (status, answer["error"]) == (400, prefix + "not a projection file of python -m alae_tf.project (no styles, lpips, "
                                                       "mse, encoder_lpips, encoder_mse)")


def test_uploads_are_centre_cropped_resized_and_converted_with_a_note(mlp):
    url, _ = mlp
    digit = real_images(1)[0, :, :, 0]
    wide = np.random.default_rng(0).integers(0, 256, (28, 84), dtype=np.uint8)
    wide[:, 28:56] = digit  # the centre crop is exactly the digit
    status, answer = upload(url, file_bytes(wide))
    assert status == 200 and answer["note"] == "PNG 84x28: centre-cropped to 28x28"
    np.testing.assert_array_equal(pixels(answer["input"])[:, :, 0], digit)

    status, answer = upload(url, file_bytes(digit, "BMP"))  # as edit --images and folder data read it (it was a 415)
    assert status == 200 and answer["note"] == "BMP 28x28: used as it is"
    np.testing.assert_array_equal(pixels(answer["input"])[:, :, 0], digit)

    grey = np.full((56, 56, 3), 90, np.uint8)
    status, answer = upload(url, file_bytes(grey, "JPEG"))
    assert status == 200 and answer["note"] == "JPEG 56x56: decoded at 1/2 (28x28), converted from RGB to grayscale"
    assert np.abs(pixels(answer["input"]).astype(int) - 90).max() <= 2  # JPEG's rounding

    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[:, :14] = (255, 255, 255, 255)  # left half opaque white, right half transparent white-ish
    rgba[:, 14:] = (200, 200, 200, 0)
    status, answer = upload(url, file_bytes(rgba, mode="RGBA"))
    assert status == 200 and answer["note"] == "PNG 28x28: transparency flattened onto black, converted from RGBA to grayscale"
    shown = pixels(answer["input"])[:, :, 0]
    assert (shown[:, :14] == 255).all() and (shown[:, 14:] == 0).all()

    palette = Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    status, answer = upload(url, buffer.getvalue())  # the note names the upload's own mode, not Pillow's steps
    assert status == 200 and answer["note"] == "PNG 28x28: converted from palette to grayscale", answer["note"]
    assert (pixels(answer["input"])[:, :, 0] == 90).all()

    opaque_la = np.stack([digit, np.full_like(digit, 255)], axis=2)  # grayscale + an all-opaque alpha
    status, answer = upload(url, file_bytes(opaque_la, mode="LA"))  # its note said nothing of the conversion
    assert status == 200 and answer["note"] == "PNG 28x28: converted from grayscale + alpha to grayscale", answer["note"]
    np.testing.assert_array_equal(pixels(answer["input"])[:, :, 0], digit)

    buffer = io.BytesIO()
    Image.fromarray(np.repeat(digit[:, :, np.newaxis], 3, axis=2)).save(buffer, format="WEBP", lossless=True)
    status, answer = upload(url, buffer.getvalue())  # WebP, as browsers save images of the web
    assert status == 200 and answer["note"] == "WEBP 28x28: converted from RGB to grayscale", answer["note"]
    np.testing.assert_array_equal(pixels(answer["input"])[:, :, 0], digit)


def test_a_large_jpeg_is_decoded_at_a_reduced_size_that_keeps_twice_the_models(monkeypatch):
    """A 12-megapixel phone photo for a 28x28 model was decoded whole (36 MB of pixels; 120 MB at
    40 megapixels) to be shrunk to 784 pixels: JPEG decodes at 1/8 directly, the picture the same."""
    from PIL import JpegImagePlugin

    from serving.http.studio_images import model_image

    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)  # smooth at the scale of the decode
    photo = Image.fromarray(coarse).resize((4000, 3000), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=95)
    decoded_sizes = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(image, mode, size):
        answer = draft(image, mode, size)
        decoded_sizes.append(image.size)
        return answer

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    image, note = model_image(buffer.getvalue(), (28, 28, 3))
    assert decoded_sizes == [(500, 375)]  # 1/8: both sides still >= 2 x 28
    assert note == "JPEG 4000x3000: decoded at 1/8 (500x375), centre-cropped to 375x375, resized to 28x28"
    whole = np.asarray(photo.crop((500, 0, 3500, 3000)).resize((28, 28), Image.Resampling.LANCZOS))
    difference = np.abs(image.astype(int) - whole)  # JPEG at quality 95 and its scaled decode: 1.7 and 7 measured
    assert difference.mean() < 2.5 and difference.max() <= 10


def test_a_jpeg_upload_is_decoded_as_training_and_edit_decode_it(tmp_path):
    """The studio decoded JPEGs at twice the model's size, training and edit at the model's: the
    same photo gave pixels up to 11 levels apart, and codes apart."""
    from alae_tf.data.files import load_square
    from serving.http.studio_images import model_image

    rng = np.random.default_rng(5)
    photo = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).resize((1024, 768), Image.Resampling.BILINEAR)
    photo.save(tmp_path / "photo.jpg", quality=90)
    image, note = model_image((tmp_path / "photo.jpg").read_bytes(), (64, 64, 3))
    assert note == "JPEG 1024x768: decoded at 1/8 (128x96), centre-cropped to 96x96, resized to 64x64"  # 1/4 before
    np.testing.assert_array_equal(image, load_square(tmp_path / "photo.jpg", 64, 3))


def test_a_16_bit_colour_or_alpha_png_is_named_as_such_in_the_note():
    """Pillow reads these as 8-bit RGB(A): the note said nothing of 16 bits, and named a grayscale +
    alpha file "RGBA"."""
    import struct
    import zlib

    from serving.http.studio_images import model_image

    def png(colour_type, channels, level):
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        rows = b"".join(b"\x00" + np.full((8, channels), level, ">u2").tobytes() for _ in range(8))
        header = struct.pack(">IIBBBBB", 8, 8, 16, colour_type, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")

    image, note = model_image(png(2, 3, 40000), (8, 8, 1))
    assert note == "PNG 8x8: 16-bit levels scaled to 8-bit, converted from RGB to grayscale"
    assert (image == 156).all()  # round(40000 / 257)
    image, note = model_image(png(4, 2, 40000), (8, 8, 1))
    assert note == ("PNG 8x8: 16-bit levels scaled to 8-bit, transparency flattened onto black, converted from "
                    "grayscale + alpha to grayscale")
    assert (image == 95).all()  # 156 at alpha 156 / 255, over black


def test_a_16_bit_upload_is_scaled_to_8_bit_levels_in_integers_and_little_memory():
    """round(v / 257) for every 16-bit level; a 40-megapixel 16-bit PNG of 78 kB took ~1 GB of the
    server's memory in float64 copies (now the numpy part is an int32 copy and the uint8 result)."""
    import tracemalloc

    from serving.http.studio_images import model_image

    every_level = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    buffer = io.BytesIO()
    Image.fromarray(every_level).save(buffer, format="PNG")
    image, note = model_image(buffer.getvalue(), (256, 256, 1))
    assert note == "PNG 256x256: 16-bit levels scaled to 8-bit"
    np.testing.assert_array_equal(image[:, :, 0], np.rint(every_level / 257.0).astype(np.uint8))
    rgb, note = model_image(buffer.getvalue(), (256, 256, 3))  # its note said nothing of the conversion to RGB
    assert note == "PNG 256x256: 16-bit levels scaled to 8-bit, converted from 16-bit grayscale to RGB"
    np.testing.assert_array_equal(rgb, np.repeat(image, 3, axis=2))

    # with a transparency key: it was converted to RGBA first, which clips every level above 255 (near
    # white); now scaled as above, keyed pixels black, as training decodes it (test_data_images.py)
    buffer = io.BytesIO()
    Image.fromarray(every_level).save(buffer, format="PNG", transparency=1000)
    image, note = model_image(buffer.getvalue(), (256, 256, 1))
    assert note == "PNG 256x256: 16-bit levels scaled to 8-bit, transparency flattened onto black"
    expected = np.rint(every_level / 257.0).astype(np.uint8)
    expected[every_level == 1000] = 0
    np.testing.assert_array_equal(image[:, :, 0], expected)

    side = 2000
    buffer = io.BytesIO()
    Image.fromarray(np.tile(every_level, (8, 8))[:side, :side]).save(buffer, format="PNG")
    tracemalloc.start()
    model_image(buffer.getvalue(), (28, 28, 1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * side * side, peak  # bytes per pixel: 6 (uint16, int32); the float64 copies took 24


def png_header_only(width: int, height: int) -> bytes:
    """A PNG's signature, its IHDR (8-bit RGBA) and IEND, no pixel data: what Pillow reads the size
    from before it decodes anything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, reason", [
    (1, 39_000_000, "the upload is 1x39000000 pixels; the studio reads images of at most 40 megapixels, with sides of at most 16384"),
    # Pillow's own bomb check raises first; its message named a second limit (179 megapixels)
    (20_000, 20_000,
     "the upload is 400 megapixels; the studio reads images of at most 40 megapixels, with sides of at most 16384"),
])
def test_an_upload_too_large_to_decode_is_refused_413_from_its_header(width, height, reason):
    """A 190 kB 1x39,000,000 PNG (under the pixel limit) took 1.9 GB of the server (Pillow keeps a
    pointer per row) and stalled it for seconds; a 20000x20000 one was a 400, not the 413 the
    README promises (Pillow's own bomb check raised first)."""
    from serving.http.studio_images import model_image
    from serving.rest import RequestError

    with pytest.raises(RequestError) as refused:
        model_image(png_header_only(width, height), (28, 28, 1))
    assert refused.value.status == 413 and str(refused.value).startswith(reason), str(refused.value)


def test_a_transparent_upload_peaks_at_two_copies_of_its_pixels(tmp_path):
    """Cropped, then premultiplied once (its colour bands are the image over black), then resized:
    a 4000x4000 RGBA PNG peaked 245 MB above the start when it was copied and composited at full
    size (3.8 copies of its 64 MB of pixels; a 6300x6300 one 607 MB), 125 MB now."""
    import subprocess
    import sys

    side = 4000
    pixels_rgba = np.zeros((side, side, 4), np.uint8)
    pixels_rgba[:, : side // 2] = 255
    Image.fromarray(pixels_rgba, "RGBA").save(tmp_path / "half.png")
    del pixels_rgba
    script = ("import resource, sys; from pathlib import Path; from serving.http.studio_images import model_image\n"
              "data = Path(sys.argv[1]).read_bytes(); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "image, note = model_image(data, (64, 64, 3))\n"
              "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, int(image[:, :28].min()), "
              "int(image[:, 35:].max()), note)")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "half.png")], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1], check=True)
    grown, left, right, note = result.stdout.split(" ", 3)
    assert (int(left), int(right)) == (255, 0)  # opaque white stays white, transparent becomes black
    assert note.strip() == "PNG 4000x4000: transparency flattened onto black, resized to 64x64, converted from RGBA to RGB"
    assert int(grown) < 2.3 * side * side * 4, int(grown) / 2**20


def test_semi_transparent_pixels_are_composited_over_black_and_hidden_colours_do_not_bleed():
    """Premultiplied, then reduced and resized: white at alpha 128 shows as grey 128, and the colour
    of fully transparent pixels (green here) never reaches the image, edges included."""
    from serving.http.studio_images import model_image

    rgba = np.zeros((600, 600, 4), np.uint8)
    rgba[:, :300] = (255, 255, 255, 128)
    rgba[:, 300:] = (0, 255, 0, 0)
    image, note = model_image(file_bytes(rgba, mode="RGBA"), (64, 64, 3))
    assert note == "PNG 600x600: transparency flattened onto black, resized to 64x64, converted from RGBA to RGB"
    assert np.abs(image[:, :28].astype(int) - 128).max() <= 1 and image[:, 36:].max() == 0
    assert image[..., 1].astype(int).max() <= image[..., 0].astype(int).max() + 1  # no green anywhere


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_transparency_key_is_flattened_onto_black_as_training_does(mode):
    """A PNG tRNS key in an RGB or grayscale file (no alpha channel) was kept as its colour, while
    training's decoding (`alae_tf.data.files.load_square`) turns those pixels black."""
    from serving.http.studio_images import model_image

    pixels = np.full((64, 64, 3), 90, np.uint8)
    pixels[:32] = 200
    array = pixels if mode == "RGB" else pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG", transparency=(200, 200, 200) if mode == "RGB" else 200)
    image, note = model_image(buffer.getvalue(), (64, 64, 3))
    assert "transparency flattened onto black" in note
    assert image[:31].max() == 0 and (image[33:] == 90).all()


def test_a_multi_picture_jpeg_is_read_as_its_first_picture():
    """Some cameras and phones save MPO (a JPEG with more pictures after the first): it was a 415."""
    from serving.http.studio_images import model_image

    first = np.full((32, 32, 3), (200, 30, 30), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(first).save(buffer, format="MPO", save_all=True, append_images=[Image.new("RGB", (32, 32))])
    image, note = model_image(buffer.getvalue(), (32, 32, 3))
    assert note == "MPO 32x32: used as it is"
    assert np.abs(image.astype(int) - first).max() <= 3  # JPEG's rounding; the second picture is black


BAD_REQUESTS = [
    ("edit", {"w": "W", "edits": []}, "w must be a list of 50 numbers"),
    ("edit", {"w": [0.0] * 49, "edits": []}, "w must be a list of 50 numbers"),
    ("edit", {"w": [0.0] * 49 + [True], "edits": []}, "w must be a list of 50 numbers"),
    ("edit", {"w": [0.0] * 49 + [1e39], "edits": []}, "w holds numbers beyond float32's range"),
    ("edit", {"w": [0.0] * 50, "edits": [{"direction": "smile", "strength": 1}]},
     f"unknown direction 'smile'; this export has: {', '.join(DIRECTIONS)}"),
    ("edit", {"w": [0.0] * 50, "edits": [{"direction": DIRECTIONS[0], "strength": 1e6}]}, "strength 1e+06 is outside [-"),
    ("edit", {"w": [0.0] * 50, "edits": [{"direction": DIRECTIONS[0], "strength": "2"}]}, 'strength must be a finite number, got "2"'),
    ("edit", {"w": [0.0] * 50, "edits": [{"direction": DIRECTIONS[0], "strength": 1}] * 2}, "appears twice"),
    ("edit", {"w": [0.0] * 50, "edits": [], "layers": "ears"}, "unknown layer range 'ears'; this export has: all, coarse"),
    ("edit", {"w": [0.0] * 50}, "the request: missing edits"),
    ("edit", {"w": [0.0] * 50, "edits": [], "colour": 1}, "unknown key(s) colour"),
    ("sample", {"seed": -1}, "seed -1 is outside [0, 4294967295]"),
    ("sample", {"seed": 1.5}, "seed must be an integer, got 1.5"),
    ("sample", {"seed": None}, "seed must be an integer, got nothing"),  # an empty seed box
    ("sample", {"seed": 1, "truncation_psi": 9}, "truncation_psi 9 is outside [0, 2]"),
    ("interpolate", {"w_a": [0.0] * 50, "w_b": [0.0] * 50, "steps": MAX_BATCH + 1}, f"steps {MAX_BATCH + 1} is outside [2, {MAX_BATCH}]"),
    ("mix", {"destination_w": [0.0] * 50}, "missing source_w"),
]


@pytest.mark.parametrize("endpoint, body, message", BAD_REQUESTS, ids=[f"{e}-{m[:30]}" for e, _, m in BAD_REQUESTS])
def test_bad_requests_are_400_naming_the_problem(mlp, endpoint, body, message):
    status, answer = post(mlp[0], endpoint, body)
    assert status == 400 and message in answer["error"], answer


def test_bad_uploads_and_protocol_errors(mlp):
    url, _ = mlp
    status, answer = upload(url, b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    assert status == 400 and answer["error"].startswith("the upload is not a readable PNG, JPEG, WebP or BMP image"), answer
    truncated = file_bytes(real_images(1)[0, :, :, 0])[:60]
    assert upload(url, truncated)[0] == 400
    assert upload(url, b"") == (400, {"error": "the upload is empty; send the bytes of a PNG, JPEG, WebP or BMP file"})
    gif = file_bytes(np.zeros((8, 8), np.uint8), "GIF")
    assert upload(url, gif) == (415, {"error": "the upload is an image in GIF format; the studio reads PNG, JPEG, WebP or BMP"})
    status, answer, _ = request(url, "POST", "/studio/api/edit", b"{}", content_type="text/plain")
    assert status == 415 and answer["error"] == "edit takes Content-Type: application/json, got text/plain"
    status, answer, _ = request(url, "POST", "/studio/api/sample", b'{"seed": NaN}')
    assert status == 400 and answer["error"].startswith("malformed JSON: NaN is not allowed")
    assert request(url, "GET", "/studio/api/edit", content_type=None)[0] == 405
    status, answer, _ = request(url, "GET", "/studio/nothing.js", content_type=None)
    assert status == 404 and answer == {"error": "no such file: /studio/nothing.js"}


def test_the_servers_limits_apply(mlp):
    url, _ = mlp
    status, answer = upload(url, bytes(int(MAX_BODY_MB * 1024 * 1024) + 1))
    assert status == 413 and answer["error"] == (f"request body of {int(MAX_BODY_MB * 1024 * 1024) + 1:,} bytes (0.05 MB) exceeds "
                                                 "the limit of 52,428 bytes (0.05 MB) (the server's --max-body-mb; start it "
                                                 "with a larger one for larger requests)")
    # --max-requests 1: a request whose body is slow to come takes the one place for bodies arriving,
    # so another from its address gets 429, and the slow one gets 408 once --read-timeout has passed.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"POST /studio/api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + bytes(10))
        time.sleep(0.3)
        status, answer = post(url, "sample", {"seed": 1})
        assert status == 429 and answer["error"] == ("1 request body is arriving, 1 of them from this address "
                                                     "(127.0.0.1); retry shortly")
        answer = b""
        while chunk := slow.recv(4096):  # the server closes the connection after a 408
            answer += chunk
    head = answer.decode()
    assert head.startswith("HTTP/1.1 408") and f"request body not received in time (10 bytes in; the server's " \
        f"--read-timeout of {READ_TIMEOUT:g} s, plus 1 s per 64 kB received, and no pause longer than {READ_TIMEOUT:g} s)" in head
    assert post(url, "sample", {"seed": 1})[0] == 200  # and the server keeps serving


def test_projection_files_alike_in_folder_and_name_get_more_of_their_path():
    """Every default projection is RUN/projections/projection.npz: two runs' were listed alike."""
    from serving.http.__main__ import distinct_names

    files = [Path("/r/a/projections/projection.npz"), Path("/r/b/projections/projection.npz"), Path("/r/c/x.npz"),
             Path("/y.npz"), Path("/s/a/projections/projection.npz")]
    assert distinct_names(files) == ["r/a/projections/projection.npz", "b/projections/projection.npz", "c/x.npz",
                                     "y.npz", "s/a/projections/projection.npz"]


def test_style_export_mixes_and_interpolates_as_the_app_api(style):
    url, model = style
    status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
    assert status == 200 and info["num_styles"] == 4 and info["directions"] == []
    assert info["layer_ranges"] == {name: list(span) for name, span in model.layer_ranges.items()}
    first, second = post(url, "sample", {"seed": 1})[1], post(url, "sample", {"seed": 2, "truncation_psi": 1.0})[1]
    a, b = pixels(first["input"]), pixels(second["input"])
    np.testing.assert_array_equal(a, model.generate(n=1, seed=1, truncation_psi=0.7, as_uint8=True)[0])
    for layers in model.layer_ranges:
        status, mixed = post(url, "mix", {"destination_w": first["w"], "source_w": second["w"], "layers": layers})
        assert status == 200
        assert_close_images(pixels(mixed["image"])[np.newaxis], model.mix(a[np.newaxis], b[np.newaxis], layers, as_uint8=True), layers)
    status, path = post(url, "interpolate", {"w_a": first["w"], "w_b": second["w"]})
    assert status == 200 and len(path["images"]) == 8
    assert_close_images(np.stack([pixels(image) for image in path["images"]]), model.interpolate(a, b, as_uint8=True), "path")
    status, answer = post(url, "edit", {"w": first["w"], "edits": [{"direction": "3_to_8", "strength": 1}]})
    assert status == 400 and answer["error"] == "unknown direction '3_to_8'; this export has: none"


def test_the_page_and_its_files_are_served_offline(style):
    url = style[0]
    status, page, headers = request(url, "GET", "/", content_type=None)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # the same page at /studio, but for the path it says it was served at (its first script reads it)
    at_studio = request(url, "GET", "/studio", content_type=None)[1]
    assert b'<meta name="alae-served-at" content="/">' in page
    assert at_studio == page.replace(b'content="/">', b'content="/studio">')
    assert b'src="studio/studio.js"' in page and b'href="studio/studio.css"' in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]  # the browser loads nothing from elsewhere
    for name, kind in (("studio.js", "text/javascript"), ("studio.css", "text/css")):
        status, body, headers = request(url, "GET", f"/studio/{name}", content_type=None)
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 1000
        assert b"http://" not in body and b"https://" not in body  # no CDN, no external fonts


def test_behind_a_proxy_with_a_path_prefix_every_url_of_the_page_stays_under_it(style):
    """As JupyterHub's jupyter-server-proxy serves it (/user/NAME/proxy/PORT/, the prefix stripped):
    the page's files, its API and the /studio/ redirect resolve under the prefix (they were absolute
    paths, which there reach the hub: the page stayed at "Loading the model..." without its script)."""
    upstream = style[0]
    with prefix_proxy(upstream, "/user/me/proxy/8501") as base:
        for page_url in (base + "/", base + "/studio"):
            status, page, _ = fetch(page_url)
            assert status == 200
            names = re.findall(rb'(?:src|href)="([^"#]+)"', page)
            # the icon is empty inline data: a request for /favicon.ico would leave the prefix (a 404)
            assert names.pop(0) == b"data:," and b'<link rel="icon" href="data:,">' in page
            assert len(names) == 2  # the script and the style sheet
            for name in names:
                assert fetch(urllib.parse.urljoin(page_url, name.decode()))[0] == 200, name
            script = fetch(urllib.parse.urljoin(page_url, "studio/studio.js"))[1].decode()
            api = urllib.parse.urljoin(page_url, re.search(r'const API = "([^"]+)"', script).group(1))
            status, info, _ = fetch(api + "info")
            assert status == 200 and json.loads(info) == request(upstream, "GET", "/studio/api/info", content_type=None)[1]
        status, _, headers = fetch(base + "/studio/", follow=False)
        assert status == 308 and urllib.parse.urljoin(base + "/studio/", headers["Location"]) == base + "/studio"


def test_behind_a_proxy_that_forwards_its_own_host_the_server_needs_that_name(style_exported):
    """jupyter-server-proxy forwards the browser's Host (the hub's name): a server on a loopback
    address answers its own names only (DNS rebinding), and --allowed-hosts adds the hub's."""
    export_dir = style_exported[1]
    with http_server(export_dir, "--studio") as url, prefix_proxy(url, "/user/me/proxy/8501", host="hub.example.org") as base:
        status, answer, _ = fetch(base + "/studio/api/info")
        assert status == 403 and json.loads(answer)["error"].endswith("start it with --allowed-hosts NAME")
    with http_server(export_dir, "--studio", "--allowed-hosts", "hub.example.org") as url, \
            prefix_proxy(url, "/user/me/proxy/8501", host="hub.example.org") as base:
        assert fetch(base + "/studio/api/info")[0] == 200
        assert fetch(base + "/studio")[0] == 200


def fetch(url, follow=True):
    """GET through urllib: (status, body, headers); redirects followed unless `follow` is false."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def test_the_servers_studio_line_gives_an_address_a_person_can_open():
    """0.0.0.0 is no address to browse to (it was printed as is); a loopback one gets the SSH tunnel."""
    from serving.http.__main__ import studio_line

    host = socket.gethostname()
    assert studio_line("0.0.0.0", 8501) == f"studio at http://{host}:8501/studio (listening on every address of this machine)"
    assert studio_line("::", 8501).startswith(f"studio at http://{host}:8501/studio ")
    # With --allowed-hosts, the machine's name gets a 403 unless listed: the line names a listed one.
    assert studio_line("0.0.0.0", 8501, ["studio.example", "other"]).startswith("studio at http://studio.example:8501/studio ")
    assert studio_line("::", 8501, ["fd00::5"]).startswith("studio at http://[fd00::5]:8501/studio ")
    assert studio_line("0.0.0.0", 8501, ["*"]).startswith(f"studio at http://{host}:8501/studio ")
    assert studio_line("127.0.0.1", 8600) == (f"studio at http://127.0.0.1:8600/studio (this machine only; from another one: "
                                              f"ssh -L 8600:127.0.0.1:8600 {host}, then open that address there)")
    assert studio_line("::1", 8600).startswith("studio at http://[::1]:8600/studio (this machine only; ")
    assert studio_line("10.1.2.3", 8501) == "studio at http://10.1.2.3:8501/studio"


def test_a_page_loaded_before_the_server_restarted_is_told_to_reload(export_dir):
    """A restart may serve other files under the same name and version (export --overwrite, another
    export folder): the page's codes and sliders are the old model's. Before 2026-12-05 each process
    counted its loads from 1, so such a page was served without a word (an audit's case)."""
    sample = json.dumps({"seed": 1}).encode()
    with http_server(export_dir, "--studio") as url:
        info = request(url, "GET", "/studio/api/info", content_type=None)[1]
        headers = {"X-Model-Version": str(info["version"]), "X-Model-Load": str(info["load"])}
        assert request(url, "POST", "/studio/api/sample", sample, headers=headers)[0] == 200
    with http_server(export_dir, "--studio") as url:
        status, answer, _ = request(url, "POST", "/studio/api/sample", sample, headers=headers)
        assert status == 409 and "the server restarted since this page was loaded" in answer["error"], answer
        assert "reload the page" in answer["error"]


def test_without_studio_the_page_is_not_served(export_dir):
    with http_server(export_dir) as url:
        status, answer, _ = request(url, "GET", "/", content_type=None)
        assert status == 404 and "error" in answer


def test_projection_files_on_the_server_open_as_their_upload_does(style, style_exported, tmp_path, capsys):
    """python -m serving.http --studio --projections A B: info lists them, and image K of file F
    opens as the upload of that file with ?index=K does (same code, images and note), without
    the upload; B holds refined noise images, which its images keep (reconstruction, edit, mix,
    interpolation between two of them: ALAEOnnx with that noise) where the upload's do not. Bad
    files are refused at start, bad requests with a 400 naming the problem."""
    from serving import editing
    from serving.http import __main__ as server_cli

    export_dir, model = style_exported[1], style[1]
    rng = np.random.default_rng(4)
    styles = {count: rng.standard_normal((count, model.num_styles, model.latent_dim)).astype(np.float32) for count in (2, 3)}
    noise = [5 * rng.standard_normal((3, *shape)).astype(np.float32) for shape in model.noise_shapes]
    files = [tmp_path / "a.npz", tmp_path / "b.npz"]
    files[0].write_bytes(projection_bytes(styles[2], rng.integers(0, 256, (2, *model.image_shape), dtype=np.uint8)))
    files[1].write_bytes(projection_bytes(styles[3], rng.integers(0, 256, (3, *model.image_shape), dtype=np.uint8), noise=noise))

    def decoded(codes, noise=None):
        return model.decode_styles(codes, as_uint8=True, noise=noise)

    with http_server(export_dir, "--studio", "--projections", *map(str, files)) as url:
        status, info, _ = request(url, "GET", "/studio/api/info", content_type=None)
        names = [f"{tmp_path.name}/a.npz", f"{tmp_path.name}/b.npz"]  # folder and name: not the server's whole path
        assert status == 200 and info["projections"] == [{"name": names[0], "count": 2}, {"name": names[1], "count": 3}]
        status, plain = post(url, "projection", {"file": 0, "index": 1})
        assert status == 200 and plain == upload_projection(url, files[0].read_bytes(), index=1)[1] | {"ref": {"file": 0, "index": 1}}
        status, opened = post(url, "projection", {"file": 1, "index": 2})
        uploaded = upload_projection(url, files[1].read_bytes(), index=2)[1]
        assert status == 200 and opened["ref"] == {"file": 1, "index": 2} and "ref" not in uploaded
        assert {key: opened[key] for key in ("input", "w", "count")} == {key: uploaded[key] for key in ("input", "w", "count")}
        assert opened["note"].startswith("image 3 of 3 of a projection (w+")
        assert opened["note"].endswith("with its refined noise images: in this reconstruction, in edits and mixes as the "
                                       "first image, and at its end of an interpolation")
        assert uploaded["note"].endswith("its refined noise images are not used for an upload (open the file on the "
                                         "server, python -m serving.http --projections, to use them)")
        own = [n[2:3] for n in noise]
        assert_close_images(pixels(opened["reconstruction"])[np.newaxis], decoded(styles[3][2:3], own), "with its noise")
        assert_close_images(pixels(uploaded["reconstruction"])[np.newaxis], decoded(styles[3][2:3]), "the upload, without")
        assert np.abs(pixels(opened["reconstruction"]).astype(int) - pixels(uploaded["reconstruction"])).max() > 3

        status, edited = post(url, "edit", {"w": opened["w"], "edits": [], "noise_of": opened["ref"]})
        assert status == 200
        assert_close_images(pixels(edited["image"])[np.newaxis], decoded(styles[3][2:3], own), "an edit keeps the noise")
        start, stop = model.layer_ranges["coarse"]
        status, mixed = post(url, "mix", {"destination_w": opened["w"], "source_w": plain["w"], "layers": "coarse",
                                          "destination_noise_of": opened["ref"]})
        expected = decoded(editing.mix_styles(styles[3][2:3], styles[2][1:2], start, stop, model.num_styles), own)
        assert status == 200
        assert_close_images(pixels(mixed["image"])[np.newaxis], expected, "a mix keeps the destination's noise")
        first = post(url, "projection", {"file": 1, "index": 0})[1]
        status, path = post(url, "interpolate", {"w_a": first["w"], "w_b": opened["w"], "steps": 3,
                                                 "noise_of_a": first["ref"], "noise_of_b": opened["ref"]})
        t = np.linspace(0, 1, 3, dtype=np.float32)
        line = styles[3][0:1] + t[:, None, None] * (styles[3][2:3] - styles[3][0:1])
        line_noise = [n[0:1] + t[:, None, None, None] * (n[2:3] - n[0:1]) for n in noise]
        assert status == 200
        assert_close_images(np.stack([pixels(image) for image in path["images"]]), decoded(line, line_noise), "interpolation")

        for endpoint, body, message in [
            ("projection", {"file": 2, "index": 0}, "file 2 is outside [0, 1]"),
            ("projection", {"file": 0, "index": 2}, "index 2 is outside [0, 1]"),
            # the name info lists: it said only that file must be an integer
            ("projection", {"file": "a.npz", "index": 0},
             'file is the position of a projection in info\'s projections (0 to 1), got the name "a.npz"'),
            ("projection", {"index": 0}, "missing file"),
            ("edit", {"w": opened["w"], "edits": [], "noise_of": "b.npz"}, 'noise_of must be {"file": F, "index": K}'),
            ("edit", {"w": opened["w"], "edits": [], "noise_of": {"file": 1, "index": 3}}, "noise_of: index 3 is outside [0, 2]"),
            ("mix", {"destination_w": opened["w"], "source_w": plain["w"], "destination_noise_of": {"file": 1}},
             "destination_noise_of: missing index"),
        ]:
            status, answer = post(url, endpoint, body)
            assert status == 400 and message in answer["error"], (body, answer)
    status, answer = post(style[0], "projection", {"file": 0, "index": 0})  # a server started without them
    assert status == 400 and "started without projection files" in answer["error"]

    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "other.npz").write_bytes(projection_bytes(np.zeros((1, 2, 3), np.float32), np.zeros((1, 4, 4, 1), np.uint8)))
    for argv, message in [
        (["--projections", str(files[0])], "--projections goes with --studio"),
        (["--studio", "--projections", str(tmp_path / "missing.npz")], "missing.npz: cannot read the projection file"),
        (["--studio", "--projections", str(tmp_path / "broken.npz")], "broken.npz: not a readable .npz archive"),
        (["--studio", "--projections", str(tmp_path / "other.npz")], "other.npz: its styles are [2, 3]"),
    ]:
        try:
            code = server_cli.main(["--model", str(export_dir), "--port", "0", *argv])
        except SystemExit as exit_info:
            code = exit_info.code
        assert code == 2 and message in capsys.readouterr().err, argv


def test_a_sliders_reach_is_twice_the_class_distance_or_the_official_demos():
    """Official directions (no class_distance) were capped at 5 where the official demo's slider
    reaches 40 x the raw vector's length (25-48 for the shipped FFHQ directions)."""
    from serving.editing import Direction
    from serving.http.studio_api import max_strength

    vector = np.zeros(4, np.float32)
    assert max_strength(Direction("fitted", vector, {"class_distance": 1.234})) == 2.47
    assert max_strength(Direction("male", vector, {"official_norm": 0.8})) == 32.0
    assert max_strength(Direction("bare", vector, {})) == 5.0



def test_projection_files_that_do_not_fit_a_newly_served_version_leave_the_list(caplog):
    """After the server switched to a version of another shape, info still listed the projection
    files given at start, and opening one was a 400 (an operator audit, 2026-12-06)."""
    import types

    from serving import projection_file
    from serving.http.studio import fitting_projections

    rng = np.random.default_rng(0)

    def projection(num_styles, side):
        styles = rng.standard_normal((2, num_styles, 8)).astype(np.float32)
        return projection_file.read(projection_bytes(styles, np.zeros((2, side, side, 3), np.uint8)))

    files = [("a.npz", projection(8, 32)), ("b.npz", projection(6, 16))]
    model = types.SimpleNamespace(signatures={"decode_styles": None}, num_styles=6, latent_dim=8, image_shape=(16, 16, 3),
                                  noise_shapes=[], version=2, metadata={"model_name": "alae_folder64"})
    with caplog.at_level("WARNING", logger="serving.http.studio"):
        assert [name for name, _ in fitting_projections(files, model)] == ["b.npz"]
    assert caplog.messages == ["--projections a.npz is left out of the studio for version 2 of alae_folder64: styles "
                               "are [8, 8] and its images [32, 32, 3]; this model's are [6, 8] and [16, 16, 3]: it was "
                               "projected with another model"]
    model.signatures = {}
    assert fitting_projections(files, model) == []
