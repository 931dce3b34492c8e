"""One image file gets the same pixels on every route: training (`load_square`), `edit --images`
(`read_image_files`), the studio's uploads and the app API's `read_image` (`model_image`)."""

import io

import numpy as np
import pytest
from PIL import Image

from alae_tf.data.files import load_square
from alae_tf.editing.images import read_image_files
from serving.http.studio_images import model_image
from serving.model_pixels import model_pixels


def smooth_rgb(width, height, seed):
    coarse = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def write_files(folder):
    """Files of the kinds people have: large and small, colour and gray, JPEG and PNG, transparent,
    16-bit, palette, sideways phone photos."""
    noise = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise256.png")
    smooth_rgb(1600, 1200, 2).save(folder / "photo.jpg", quality=92)
    sideways = smooth_rgb(900, 600, 3)
    exif = sideways.getexif()
    exif[0x0112] = 6  # stored turned: viewers rotate it
    sideways.save(folder / "sideways.jpg", quality=92, exif=exif)
    rgba = np.dstack([np.asarray(smooth_rgb(300, 200, 4)), np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "fading.png")
    Image.fromarray(np.random.default_rng(5).integers(0, 65536, (90, 120), dtype=np.uint16)).save(folder / "deep.png")
    smooth_rgb(70, 50, 6).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    smooth_rgb(20, 20, 7).save(folder / "small.webp", lossless=True)
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_every_route_reads_an_image_file_to_the_same_pixels(tmp_path, image_shape):
    """The studio resized with a box pre-reduction and converted colour after resizing, training
    before: a 256x256 PNG read for a 28x28 model came out up to 19 levels apart, and the app API's
    `read_image` gave codes that `edit` and training did not."""
    names = write_files(tmp_path)
    edit_pixels = read_image_files(tmp_path, image_shape)
    assert edit_pixels.shape == (len(names), *image_shape)
    for name, from_edit in zip(names, edit_pixels):
        from_training = load_square(tmp_path / name, image_shape[0], image_shape[2])
        from_upload, _ = model_image((tmp_path / name).read_bytes(), image_shape)
        np.testing.assert_array_equal(from_training, from_edit, err_msg=name)
        np.testing.assert_array_equal(from_training, from_upload, err_msg=name)


def test_a_large_image_is_resized_with_lanczos_alone():
    """No box pre-reduction: the pixels are Pillow's LANCZOS resize of the whole image."""
    noise = np.random.default_rng(8).integers(0, 256, (256, 256), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    pixels, steps = model_pixels(Image.open(buffer), (28, 28, 1))
    np.testing.assert_array_equal(pixels[..., 0], np.asarray(Image.fromarray(noise).resize((28, 28), Image.Resampling.LANCZOS)))
    assert steps == ["resized to 28x28"]


def test_a_sideways_jpeg_is_decoded_scaled_then_turned_upright_and_cropped():
    photo = smooth_rgb(900, 600, 9)
    exif = photo.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=95, exif=exif)
    pixels, steps = model_pixels(Image.open(buffer), (64, 64, 3))
    assert steps == ["decoded at 1/8 (113x75)", "turned upright (EXIF orientation)", "centre-cropped to 75x75",
                     "resized to 64x64"]
    upright = photo.transpose(Image.Transpose.ROTATE_270)  # orientation 6: turn 90 degrees clockwise
    expected = np.asarray(upright.crop((0, 150, 600, 750)).resize((64, 64), Image.Resampling.LANCZOS))
    difference = np.abs(pixels.astype(int) - expected)  # JPEG's rounding and its 1/8 decode
    assert difference.mean() < 3 and difference.max() <= 16, (difference.mean(), difference.max())


def test_a_model_of_another_channel_count_is_refused():
    with pytest.raises(ValueError, match="4-channel images"):
        model_pixels(Image.new("RGB", (8, 8)), (8, 8, 4))
