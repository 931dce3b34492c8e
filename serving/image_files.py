"""An image file's bytes as one uint8 image of a model's shape [H, W, C], for the studio's uploads
and the app API's `ALAEOnnx.read_image` (Pillow and numpy, no TensorFlow, no HTTP).

`model_image(data, image_shape)` reads a PNG, JPEG (MPO: its first picture), WebP or BMP as
training and `edit` read image files (`serving.model_pixels`: scaled JPEG decode, EXIF
orientation, centre crop, transparency onto black, Lanczos resize, grayscale or RGB), with a note
saying which of these happened. Given an aligner, what it finds in the whole picture instead of its
centre crop: `serving.faces.FaceAligner` (the square of the largest face) or
`serving.digits.DigitAligner` (a handwritten digit framed as MNIST's). An aligner has
  mode            the mode ("RGB" or "L") it looks at the picture in;
  aligned(image, side) -> (a side x side image or None where nothing is found, what it did in words);
  thing, hint     what it looks for ("face") and, where none is found, what it can find;
  takes_drawings  whether the studio's drawing canvas stays (a drawn digit; not a face);
  description     a sentence for the studio's page.
A file it cannot take raises `ImageFileError`, a ValueError whose `problem` says why: UNREADABLE
(not an image, truncated, empty), FORMAT (an image in another format), SIZE (more than MAX_PIXELS
pixels or a side longer than MAX_SIDE, checked from its header before it is decoded: Pillow keeps
a pointer per row, so a 1x39,000,000 PNG of 190 kB took 1.9 GB) or NOTHING_FOUND (the aligner found
no face, no digit).
"""

import io
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from serving.model_pixels import IMAGE_FORMATS, MODES, READABLE_FORMATS, conversion_step, model_pixels, whole_pixels

# What browsers save, phones send, and edit --images reads. MPO is a JPEG with more pictures after
# the first (some cameras' and phones' photos).
FORMATS = (*IMAGE_FORMATS, "MPO")
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; larger ones are refused before decoding
MAX_SIDE = 16384
UNREADABLE, FORMAT, SIZE, NOTHING_FOUND = "unreadable", "format", "size", "nothing found"


class ImageFileError(ValueError):
    def __init__(self, problem: str, message: str):
        super().__init__(message)
        self.problem = problem  # UNREADABLE, FORMAT, SIZE or NOTHING_FOUND


def model_image(data: bytes, image_shape, subject="the upload", reader="the studio", aligner=None) -> tuple[np.ndarray, str]:
    """(uint8 image [H, W, C] of `image_shape`, a one-line note of what was done to the image).
    Errors name the data as `subject` and the code reading it as `reader`. `aligner`: a FaceAligner
    or DigitAligner (above), to take what it finds instead of the centre crop."""
    channels = int(image_shape[2])
    if channels not in MODES:
        raise ValueError(f"this model takes {channels}-channel images; {reader} handles 1 (grayscale) or 3 (RGB)")
    if not data:
        raise ImageFileError(UNREADABLE, f"{subject} is empty; send the bytes of a {READABLE_FORMATS} file")
    image = _open(data, subject, reader)
    size, file_format = f"{image.width}x{image.height}", image.format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            array, steps = model_pixels(image, image_shape) if aligner is None else _aligned_pixels(image, image_shape, aligner)
    except Exception as exc:  # truncated or corrupt data (Pillow raises OSError, SyntaxError, ValueError, ...)
        raise ImageFileError(UNREADABLE, f"{subject} is not a readable {READABLE_FORMATS} image ({_reason(exc)})") from None
    if array is None:
        raise ImageFileError(NOTHING_FOUND, f"no {aligner.thing} found in {subject} ({aligner.hint})")
    return array, f"{file_format} {size}: {', '.join(steps) if steps else 'used as it is'}"


def _aligned_pixels(image: Image.Image, image_shape, aligner) -> tuple[np.ndarray | None, list[str]]:
    """(what `aligner` finds in `image`, read as model_pixels reads it but not centre-cropped, uint8
    [H, W, C], the steps in words); (None, []) where it finds nothing."""
    side, mode, source_mode = int(image_shape[0]), MODES[int(image_shape[2])], image.mode
    # Looked at in the aligner's mode (faces in colour), whatever the model's channels.
    whole, steps = whole_pixels(image, aligner.mode)
    aligned, done = aligner.aligned(whole, side)
    if aligned is None:
        return None, []
    steps = [step for step in steps if step not in conversion_step(source_mode, aligner.mode)]
    steps += [done, *conversion_step(source_mode, mode)]
    return np.asarray(aligned.convert(mode), np.uint8).reshape(side, side, len(mode)), steps


def _open(data: bytes, subject: str, reader: str) -> Image.Image:
    """The data opened (header read, pixels not decoded) once its format and size are ones `reader` reads."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # over twice Pillow's own pixel limit, and so over ours
        count = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message; the image itself is not returned
        size = f"{int(count[1]) / 1e6:,.0f} megapixels" if count else "larger than Pillow decodes"
        raise ImageFileError(SIZE, f"{subject} is {size}; {reader} reads images of at most "
                                   f"{MAX_PIXELS // 1_000_000} megapixels, with sides of at most {MAX_SIDE}") from None
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ...
        raise ImageFileError(UNREADABLE, f"{subject} is not a readable {READABLE_FORMATS} image ({_reason(exc)})") from None
    if image.format not in FORMATS:
        raise ImageFileError(FORMAT, f"{subject} is an image in {image.format} format; {reader} reads {READABLE_FORMATS}")
    if image.width * image.height > MAX_PIXELS or max(image.size) > MAX_SIDE:
        raise ImageFileError(SIZE, f"{subject} is {image.width}x{image.height} pixels; {reader} reads images of "
                                   f"at most {MAX_PIXELS // 1_000_000} megapixels, with sides of at most {MAX_SIDE}")
    return image


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):  # its message names a BytesIO object
        return "no image format recognised"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
