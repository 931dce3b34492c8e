"""Image files in and out of the studio (Pillow and numpy, no TensorFlow).

`model_image(data, image_shape)` turns an uploaded PNG, JPEG (MPO: its first picture), WebP or BMP
into one uint8 image of the model's shape [H, W, C]: a JPEG decoded at 1/2 to 1/8 of its size
where that keeps twice the model's, the EXIF orientation applied, the centre crop of the model's
aspect ratio, transparency flattened onto black, resized (Lanczos, after a box reduction to three
times the model's size) and converted to grayscale or RGB, with a note saying which of these
happened. Cropping comes before any full-size copy: a 6300x6300 RGBA upload peaked at 736 MB when
it was flattened first. `png_data_url(image)` is the other way: a uint8
[H, W, C] image as a `data:image/png;base64,...` URL the page shows and downloads.

Bad uploads raise `serving.rest.RequestError`: 400 for a file that is not a readable image,
415 for an image in another format, 413 for one of more than MAX_PIXELS pixels or a side longer
than MAX_SIDE (checked from its header, before it is decoded: Pillow keeps a pointer per row, so a
1x39,000,000 PNG of 190 kB took 1.9 GB).
"""

import base64
import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.rest import RequestError

# What browsers save, phones send, and edit --images reads; others get a 415. MPO is a JPEG with
# more pictures after the first (some cameras' and phones' photos).
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP")
READABLE = "PNG, JPEG, WebP or BMP"
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; larger ones are refused before decoding
MAX_SIDE = 16384
REDUCING_GAP = 3.0  # Pillow's: box-reduce to >= 3x the model's size, then Lanczos
MODES = {1: "L", 3: "RGB"}
# Pillow's modes as the upload's note names them (others by their Pillow name: CMYK, YCbCr, ...).
MODE_NAMES = {"1": "1-bit", "L": "grayscale", "LA": "grayscale + alpha", "P": "palette", "PA": "palette + alpha",
              "I": "16-bit grayscale", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale"}


def model_image(data: bytes, image_shape) -> tuple[np.ndarray, str]:
    """(uint8 image [H, W, C] of `image_shape`, a one-line note of what was done to the upload)."""
    height, width, channels = (int(n) for n in image_shape)
    if channels not in MODES:
        raise RequestError(400, f"this model takes {channels}-channel images; the studio handles 1 (grayscale) or 3 (RGB)")
    if not data:
        raise RequestError(400, f"the upload is empty; send the bytes of a {READABLE} file")
    image, file_format, (source_width, source_height) = _open(data, max(height, width))
    size, source_mode = f"{source_width}x{source_height}", image.mode
    steps = []
    if (colour_type := _sixteen_bit_png_colour_type(data)) is not None:  # Pillow reads them as 8-bit RGB(A)
        source_mode = {PNG_GRAY_ALPHA: "LA", PNG_RGB: "RGB", PNG_RGBA: "RGBA"}[colour_type]
        steps.append("16-bit levels scaled to 8-bit")
    if image.width != source_width:
        steps.append(f"decoded at 1/{source_width // image.width} ({image.width}x{image.height})")
    image = _upright(image, steps)
    image = _centre_crop(image, width / height, steps)
    image = _flattened(image, steps)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        steps.append(f"resized to {width}x{height}")
    if image.mode == "RGBa":  # premultiplied: its colour bands are the image over black
        image = Image.merge("RGB", image.split()[:3])
    # The upload's own mode decides (a palette or an opaque grayscale + alpha file is converted too);
    # 16-bit grayscale has its own step above, and is grayscale for a grayscale model.
    if source_mode != MODES[channels] and not (source_mode.startswith("I") and channels == 1):
        steps.append(f"converted from {MODE_NAMES.get(source_mode, source_mode)} to {'grayscale' if channels == 1 else 'RGB'}")
    image = image.convert(MODES[channels])
    array = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
    note = f"{file_format} {size}: {', '.join(steps) if steps else 'used as it is'}"
    return array, note


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_RGB, PNG_GRAY_ALPHA, PNG_RGBA = 2, 4, 6  # IHDR colour types


def _sixteen_bit_png_colour_type(data: bytes) -> int | None:
    """The colour type of a 16-bit PNG in colour or with alpha (IHDR: bit depth at byte 24, colour
    type at 25), which Pillow decodes to 8 bits without saying so; None for any other file."""
    if data.startswith(PNG_SIGNATURE) and len(data) > 25 and data[12:16] == b"IHDR" and data[24] == 16:
        return data[25] if data[25] in (PNG_RGB, PNG_GRAY_ALPHA, PNG_RGBA) else None
    return None


def png_data_url(image: np.ndarray) -> str:
    """A uint8 image [H, W, 1] or [H, W, 3] as a PNG data URL."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in MODES:
        raise ValueError(f"expected a uint8 image [H, W, 1 or 3], got {image.dtype} {list(image.shape)}")
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(pixels, MODES[image.shape[2]]).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _open(data: bytes, least_side: int) -> tuple[Image.Image, str, tuple[int, int]]:
    """(the decoded first frame, its format, the file's width and height) of a PNG, JPEG, WebP or BMP file. A
    JPEG is decoded at 1/2, 1/4 or 1/8 of its size where both sides stay >= `least_side` (the
    model's, as training and `edit` decode: at twice it, the studio's codes of a photo differed from
    theirs): a phone photo for a 256x256 model takes a sixty-fourth of the memory and time."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # over twice Pillow's own pixel limit, and so over ours
        count = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message; the image itself is not returned
        size = f"{int(count[1]) / 1e6:,.0f} megapixels" if count else "larger than Pillow decodes"
        raise RequestError(413, f"the upload is {size}; the studio reads images of at most "
                                f"{MAX_PIXELS // 1_000_000} megapixels, with sides of at most {MAX_SIDE}") from None
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ...
        raise RequestError(400, f"the upload is not a readable {READABLE} image ({_reason(exc)})") from None
    if image.format not in FORMATS:
        raise RequestError(415, f"the upload is an image in {image.format} format; the studio reads {READABLE}")
    if image.width * image.height > MAX_PIXELS or max(image.size) > MAX_SIDE:
        raise RequestError(413, f"the upload is {image.width}x{image.height} pixels; the studio reads images of "
                                f"at most {MAX_PIXELS // 1_000_000} megapixels, with sides of at most {MAX_SIDE}")
    size = image.size
    try:
        if image.format in ("JPEG", "MPO"):
            image.draft(image.mode, (least_side, least_side))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except Exception as exc:  # truncated or corrupt data
        raise RequestError(400, f"the upload is not a readable {READABLE} image ({_reason(exc)})") from None
    return image, image.format, size


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):  # its message names a BytesIO object
        return "no image format recognised"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _upright(image, steps):
    orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
    if orientation in (1, None):
        return image
    upright = ImageOps.exif_transpose(image)
    steps.append("turned upright (EXIF orientation)")
    return upright


def _flattened(image, steps):
    """Without transparency: an image with it becomes premultiplied RGBa, whose colour bands are
    the image over black (MNIST's background), and which resizes without colour bleeding in from
    transparent pixels."""
    if image.mode.startswith("I"):  # 16-bit grayscale PNG (first: Pillow's RGBA of it clips every level above 255)
        # round(v / 257) in integers, in place: (v + 128) // 257 (no ties: 257 is odd). The float64
        # copies this once made of a 40-megapixel upload weighed ~1 GB.
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
            return rgba.convert("RGB")
        steps.append("transparency flattened onto black")
        return rgba.convert("RGBa")
    if image.mode not in ("L", "RGB"):  # 1-bit, palette, CMYK, YCbCr, ...
        return image.convert("L" if image.mode == "1" else "RGB")
    return image


def _centre_crop(image, aspect: float, steps):
    """The largest centred box of width / height = aspect."""
    width, height = image.size
    if abs(width / height - aspect) < 1e-6:
        return image
    if width / height > aspect:
        new_width, new_height = max(1, round(height * aspect)), height
    else:
        new_width, new_height = width, max(1, round(width / aspect))
    left, top = (width - new_width) // 2, (height - new_height) // 2
    cropped = image.crop((left, top, left + new_width, top + new_height))
    steps.append(f"centre-cropped to {new_width}x{new_height}")
    return cropped
