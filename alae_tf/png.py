"""Image grids for PNG files and TensorBoard."""

from pathlib import Path

import numpy as np
from PIL import Image

from serving.atomic_write import replacing


def image_grid(images_uint8, columns):
    """[N, H, W, C] uint8 -> one [rows*H, columns*W, C] uint8 image (missing cells black)."""
    images = np.asarray(images_uint8)
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * height, columns * width, channels), dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return grid


def save_png(grid_uint8, path):
    """Written to a partial file, then renamed over PATH (serving.atomic_write.replacing): a stop
    mid-write (Ctrl-C, SIGTERM) leaves the earlier file or none, never a cut-off image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = grid_uint8[..., 0] if grid_uint8.shape[-1] == 1 else grid_uint8
    try:
        with replacing(path) as partial:
            Image.fromarray(pixels).save(partial, format="PNG")
    except OSError as exc:
        if exc.filename is None:  # Pillow's write errors name no file (a full disk: "[Errno 28] No space left on device")
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
