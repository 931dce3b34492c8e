"""How an image file becomes a model's input pixels: one definition for training
(`alae_tf.data.files.load_square`), `python -m alae_tf.edit`, the studio's uploads and the app
API's `read_image`, so that an image gets the same pixels, and the same codes, on every route
(Pillow and numpy only: the app and the server stay TensorFlow-free).

In order: a JPEG is decoded at 1/2, 1/4 or 1/8 of its size where its crop keeps at least the
model's size (libjpeg's scaled decode: a phone photo for a 256x256 model takes a sixty-fourth of
the memory and time); turned upright by its EXIF orientation; the centre crop of the model's
aspect ratio (the longer side loses floor(excess / 2) pixels at its start); 16-bit grayscale
scaled to 8 bits (round(v / 257)); transparency flattened onto black (premultiplied, so the colour
of transparent pixels never bleeds in); converted to grayscale (before resizing: per-band
clipping of LANCZOS's overshoot in RGB moved gray pixels by up to 16 levels); Pillow's LANCZOS
resize (antialiased when shrinking, without a box pre-reduction: at 256x256 -> 28x28 that moved
pixels by up to 19 levels); last, grayscale files made RGB for an RGB model. Cropping comes before
any full-size copy: a 6300x6300 RGBA upload peaked at 736 MB when it was flattened first.
"""

import math

import numpy as np
from PIL import Image, ImageOps

MODES = {1: "L", 3: "RGB"}
# The image files every route reads (training folders, edit --images, the studio's uploads), by
# Pillow's format name, with their file extensions.
IMAGE_FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",), "BMP": (".bmp",)}
READABLE_FORMATS = "PNG, JPEG, WebP or BMP"
# Pillow's modes as the steps name them (others by their Pillow name: CMYK, YCbCr, ...).
MODE_NAMES = {"1": "1-bit", "L": "grayscale", "LA": "grayscale + alpha", "P": "palette", "PA": "palette + alpha",
              "I": "16-bit grayscale", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale"}
EXIF_ORIENTATION = 0x0112
TURNED_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def model_pixels(image: Image.Image, image_shape) -> tuple[np.ndarray, list[str]]:
    """(uint8 pixels [H, W, C] of `image_shape`, the steps that changed the image, in words) for an
    opened Pillow image whose pixels are not loaded yet (so that a JPEG can be decoded scaled down).
    Pillow's own exceptions for a damaged file come out of here unchanged."""
    height, width, channels = (int(n) for n in image_shape)
    if channels not in MODES:
        raise ValueError(f"a model of {channels}-channel images; images are read as 1 (grayscale) or 3 (RGB) channels")
    steps = []
    source_mode = _sixteen_bit_colour_mode(image)
    if source_mode is not None:  # Pillow decodes these to 8 bits without saying so
        steps.append("16-bit levels scaled to 8-bit")
    else:
        source_mode = image.mode
    orientation = exif_orientation(image)
    _decode_scaled(image, (height, width) if orientation in TURNED_SIDEWAYS else (width, height), MODES[channels], steps)
    image.load()
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
        steps.append("turned upright (EXIF orientation)")
    image = _centre_crop(image, width / height, steps)
    image = _flattened(image, MODES[channels], steps)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
        steps.append(f"resized to {width}x{height}")
    if image.mode == "RGBa":  # premultiplied: its colour bands are the image over black
        image = Image.merge("RGB", image.split()[:3])
    steps += conversion_step(source_mode, MODES[channels])
    image = image.convert(MODES[channels])
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels), steps


def whole_pixels(image: Image.Image, mode: str = "RGB") -> tuple[Image.Image, list[str]]:
    """(the whole picture in `mode`, "L" or "RGB", read as model_pixels reads it but neither
    cropped nor resized: turned upright, 16-bit levels scaled, transparency over black; the steps
    that changed it, in words): for serving.faces, which finds a face anywhere in a photo."""
    steps = []
    if _sixteen_bit_colour_mode(image) is not None:
        steps.append("16-bit levels scaled to 8-bit")
    source_mode = image.mode
    image.load()
    if exif_orientation(image) != 1:
        image = ImageOps.exif_transpose(image)
        steps.append("turned upright (EXIF orientation)")
    image = _flattened(image, mode, steps)
    if image.mode == "RGBa":
        image = Image.merge("RGB", image.split()[:3])
    return image.convert(mode), steps + conversion_step(source_mode, mode)


def conversion_step(source_mode: str, mode: str) -> list[str]:
    """The step that says a file of `source_mode` became "L" or "RGB" `mode`, or none. The file's own
    mode decides (a palette or an opaque grayscale + alpha file is converted too); 16-bit grayscale
    has its own step, and is grayscale for a grayscale model."""
    if source_mode == mode or (source_mode.startswith("I") and mode == "L"):
        return []
    return [f"converted from {MODE_NAMES.get(source_mode, source_mode)} to {'grayscale' if mode == 'L' else 'RGB'}"]


def exif_orientation(image: Image.Image) -> int:
    """1 (stored upright) unless the EXIF Orientation tag says otherwise."""
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return orientation if orientation in range(1, 9) else 1


def _sixteen_bit_colour_mode(image: Image.Image) -> str | None:
    """"RGB", "RGBA" or "LA" for a 16-bit colour or grayscale + alpha PNG (its raw mode, e.g.
    "RGB;16B", before the pixels are loaded), else None."""
    if image.format != "PNG" or image.mode.startswith("I") or not image.tile:
        return None
    raw_mode = str(image.tile[0][3])  # the decoder's arguments (older Pillow's tiles are plain tuples)
    return raw_mode.split(";")[0] if ";16" in raw_mode else None


def _decode_scaled(image: Image.Image, model_size: tuple[int, int], mode: str, steps: list[str]):
    """Let a JPEG decode at the smallest scale whose centre crop still covers `model_size` (width,
    height as stored), a colour one straight to grayscale for a grayscale model (libjpeg's luma);
    other formats ignore Pillow's draft."""
    stored_width, stored_height = image.size
    crop_width, crop_height = _crop_size(stored_width, stored_height, model_size[0] / model_size[1])
    wanted = (math.ceil(stored_width * model_size[0] / crop_width), math.ceil(stored_height * model_size[1] / crop_height))
    if wanted[0] < stored_width and wanted[1] < stored_height:
        image.draft(mode, wanted)
    if image.size != (stored_width, stored_height):
        steps.append(f"decoded at 1/{round(stored_width / image.width)} ({image.width}x{image.height})")


def _crop_size(width: int, height: int, aspect: float) -> tuple[int, int]:
    """The largest (width, height) of ratio `aspect` inside width x height."""
    if abs(width / height - aspect) < 1e-6:
        return width, height
    if width / height > aspect:
        return max(1, round(height * aspect)), height
    return width, max(1, round(width / aspect))


def _centre_crop(image: Image.Image, aspect: float, steps: list[str]) -> Image.Image:
    width, height = image.size
    new_width, new_height = _crop_size(width, height, aspect)
    if (new_width, new_height) == (width, height):
        return image
    left, top = (width - new_width) // 2, (height - new_height) // 2
    steps.append(f"centre-cropped to {new_width}x{new_height}")
    return image.crop((left, top, left + new_width, top + new_height))


def _flattened(image: Image.Image, mode: str, steps: list[str]) -> Image.Image:
    """Without transparency, in "L" (for a grayscale model), "RGB", or premultiplied "RGBa" (an RGB
    model's transparent image: its colour bands are the image over black, MNIST's background, and it
    resizes band by band as that image would, with one copy of the pixels fewer)."""
    if image.mode.startswith("I"):  # 16-bit grayscale PNG (first: Pillow's RGBA of it clips every level above 255)
        # round(v / 257) in integers, in place: (v + 128) // 257 (no ties: 257 is odd). Float64
        # copies of a 40-megapixel image would weigh ~1 GB.
        levels = np.array(image, dtype=np.int32)
        keyed = levels == key if isinstance(key := image.info.get("transparency"), int) else None  # PNG tRNS
        np.clip(levels, 0, 65535, out=levels)
        levels += 128
        levels //= 257
        steps.append("16-bit levels scaled to 8-bit")
        if keyed is not None:
            levels[keyed] = 0
            steps.append("transparency flattened onto black")
        return Image.fromarray(levels.astype(np.uint8), "L")
    if image.has_transparency_data:  # an alpha channel, or a transparency key (PNG tRNS, GIF) in any mode
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")  # (convert copies even an RGBA image)
        if rgba.getextrema()[3][0] == 255:  # an alpha channel, all opaque (a canvas's PNG)
            return rgba.convert(mode)
        steps.append("transparency flattened onto black")
        premultiplied = rgba.convert("RGBa")
        if mode == "RGB":
            return premultiplied
        red, green, blue, _ = premultiplied.split()
        del premultiplied, rgba
        return Image.merge("RGB", (red, green, blue)).convert(mode)
    if image.mode == mode or (image.mode == "L" and mode == "RGB"):  # (made RGB once resized: a third of the work)
        return image
    return image.convert(mode)  # colour for a grayscale model; 1-bit, palette, CMYK, YCbCr, ...
