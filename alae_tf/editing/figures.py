"""Editing figures of real images as uint8 grids (files: `alae_tf.png.save_png`):

- `strength_sweep`: one row per image: the image itself, then its edits G(edit(code, strength))
  for each strength (strength 0 is G of the code: E(x)'s reconstruction, or a projection);
- the mixing matrix of real images is `alae_tf.grids.mixing_grid_of_styles` on their encodings,
  the interpolation strip `alae_tf.grids.interpolation_grid` with `image_pairs`.

All images of a figure share one noise draw (`noise`: a seed; None: no noise), as the training
grids do, or each keeps its image's own noise images (`alae_tf.grids.ImageNoise`).
"""

import numpy as np
import tensorflow as tf

from alae_tf.errors import ALAEError
from alae_tf.grids import ImageNoise, render
from alae_tf.png import image_grid

# The most pixels one figure may hold: it is rendered into one array (with G's float images of
# a part of it at a time) and written as one PNG. 5,461 cells at 256x256 RGB, 341 at 1024x1024.
FIGURE_BYTES = 2**30


def check_figure_size(cells: int, image_shape, zoom: int = 1) -> None:
    """Refuses, before any image is decoded, a figure of `cells` images larger than FIGURE_BYTES."""
    size = cells * int(np.prod(image_shape)) * zoom**2
    if size > FIGURE_BYTES:
        raise ALAEError(f"the figure would hold {cells:,} images of {image_shape[0]}x{image_shape[1]}"
                        f"{f' zoomed {zoom}x' if zoom > 1 else ''}, {size / 2**30:.1f} GiB of pixels, more than the "
                        f"{FIGURE_BYTES >> 30} GiB one figure may hold; pass fewer images (held-out:N, a smaller folder)")


def strength_sweep(sampler, originals, codes, direction, strengths, start=0, stop=None, *, noise=0) -> np.ndarray:
    """uint8 grid, len(originals) rows x (1 + len(strengths)) columns; originals uint8 [N, H, W, C],
    codes their latent codes (w [N, latent] or styles [N, num_styles, latent]); an `ImageNoise`
    holds the originals' noise images, which their edits keep."""
    count, columns = len(originals), len(strengths)
    codes = tf.repeat(sampler.as_styles(codes), columns, axis=0)  # image i's code, once per strength
    strength = tf.tile(tf.constant(strengths, tf.float32), [count])
    if isinstance(noise, ImageNoise):
        noise = noise.take(np.repeat(np.arange(count), columns))
    edits = render(sampler, sampler.edit(codes, direction, strength, start, stop), noise)
    edits = edits.reshape(count, columns, *edits.shape[1:])
    rows = np.concatenate([np.asarray(originals)[:, np.newaxis], edits], axis=1)
    return image_grid(rows.reshape(-1, *edits.shape[2:]), columns + 1)


def zoomed(grid, factor: int) -> np.ndarray:
    """A uint8 grid enlarged `factor` times, nearest neighbour (small images stay crisp)."""
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
