"""Image files in and out of the studio (Pillow and numpy, no TensorFlow).

`model_image(data, image_shape)` is `serving.image_files.model_image` for an upload: a file it
cannot take is a `serving.rest.RequestError`, 400 for one that is not a readable image, 415 for an
image in another format, 413 for one too large, 422 for one in which the server's aligner
(--align-faces, --align-digits) finds no face or digit. `png_data_url(image)` is the other way: a uint8
[H, W, C] image as a `data:image/png;base64,...` URL the page shows and downloads.
"""

import base64
import io

import numpy as np
from PIL import Image

from serving import image_files
from serving.model_pixels import MODES
from serving.rest import RequestError

STATUS_OF_PROBLEM = {image_files.UNREADABLE: 400, image_files.FORMAT: 415, image_files.SIZE: 413,
                     image_files.NOTHING_FOUND: 422}


def model_image(data: bytes, image_shape, aligner=None) -> tuple[np.ndarray, str]:
    """(uint8 image [H, W, C] of `image_shape`, a one-line note of what was done to the upload);
    `aligner`: the server's (--align-faces, --align-digits: serving.image_files), or None."""
    try:
        return image_files.model_image(data, image_shape, aligner=aligner)
    except image_files.ImageFileError as exc:
        raise RequestError(STATUS_OF_PROBLEM[exc.problem], str(exc)) from None
    except ValueError as exc:  # a model of other channels than 1 or 3
        raise RequestError(400, str(exc)) from None


def png_data_url(image: np.ndarray) -> str:
    """A uint8 image [H, W, 1] or [H, W, 3] as a PNG data URL."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in MODES:
        raise ValueError(f"expected a uint8 image [H, W, 1 or 3], got {image.dtype} {list(image.shape)}")
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(pixels, MODES[image.shape[2]]).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
