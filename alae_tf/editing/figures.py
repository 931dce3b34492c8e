"""Editing figures of real images as uint8 grids (files: `alae_tf.png.save_png`):

- `strength_sweep`: one row per image: the image itself, then its edits G(edit(E(x), strength))
  for each strength (strength 0 is the plain reconstruction);
- the mixing matrix of real images is `alae_tf.grids.mixing_grid_of_styles` on their encodings,
  the interpolation strip `alae_tf.grids.interpolation_grid` with `image_pairs`.

All images of a figure share one noise draw (`noise_seed`), as the training grids do.
"""

import numpy as np
import tensorflow as tf

from alae_tf.data.batches import to_uint8
from alae_tf.grids import render
from alae_tf.png import image_grid


def strength_sweep(sampler, images, direction, strengths, start=0, stop=None, *, noise_seed=0) -> np.ndarray:
    """uint8 grid, len(images) rows x (1 + len(strengths)) columns; images float [N, H, W, C] in [-1, 1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    count, columns = images.shape[0], len(strengths)
    w = tf.repeat(sampler.encode(images), columns, axis=0)  # image i's w, once per strength
    strength = tf.tile(tf.constant(strengths, tf.float32), [count])
    edits = render(sampler, sampler.edit(w, direction, strength, start, stop), noise_seed)
    edits = edits.reshape(count, columns, *edits.shape[1:])
    originals = to_uint8(images).numpy()[:, np.newaxis]
    return image_grid(np.concatenate([originals, edits], axis=1).reshape(-1, *edits.shape[2:]), columns + 1)


def zoomed(grid, factor: int) -> np.ndarray:
    """A uint8 grid enlarged `factor` times, nearest neighbour (small images stay crisp)."""
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
