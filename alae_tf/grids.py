"""Figures of a model's latent spaces as uint8 image grids (no file I/O; see `alae_tf.images`).

- `style_mixing_grid`: the StyleGAN mixing figure. The top row holds the source images, the
  left column the destination images (the top-left cell is black); cell (row j, column i)
  renders destination j's styles with the style inputs of one range taken from source i.
  One grid per range ("coarse", "middle", "fine"; see `mixing_ranges`).
- `interpolation_grid`: one row per pair, `steps` images from one end to the other with linear
  interpolation in W: first the rows between mapped latents F(z1), F(z2), then the rows between
  encodings E(x1), E(x2) of held-out images, framed by the two real images (W rows get black
  frame cells so all rows line up). An encoder row's end images are the reconstructions.

Everything uses the EMA networks (E is the live encoder for the MLP backbone, as in
`ALAE.call`), the model's current level resolution, and one noise draw shared by every image
of a grid (`noise_seed`), so images differ by their styles only and a call is deterministic.
Truncation (`truncation_psi` on the first `truncation_cutoff` style inputs) applies to images
from random latents, not to encodings, like `ALAE.generate` and reconstructions.
"""

import numpy as np
import tensorflow as tf

from alae_tf.data.pipeline import to_uint8
from alae_tf.images import image_grid
from alae_tf.model import NOISE_STREAMS

MIXING_RANGES = ("coarse", "middle", "fine")


def mixing_ranges(level):
    """{name: (start, stop)} style-input ranges of the levels 0..`level` in use (empty ones left out).

    With 2 style inputs per level: coarse = the 4x4 level (4x4 and 8x8 from 6 levels, i.e.
    128x128, on), middle = the next one or two levels, fine = the rest, as in StyleGAN's
    figure (1024x1024: [0, 4), [4, 8), [8, 18)). Examples: 32x32 (4 levels): [0, 2), [2, 4),
    [4, 8); 8x8: coarse [0, 2), fine [2, 4); at 4x4 the level's two style inputs are split,
    coarse [0, 1), fine [1, 2)."""
    levels = level + 1
    if levels == 1:
        return {"coarse": (0, 1), "fine": (1, 2)}
    coarse = min(2, max(1, levels // 3))
    middle = coarse + min(2, (levels - coarse) // 2)
    spans = {"coarse": (0, 2 * coarse), "middle": (2 * coarse, 2 * middle), "fine": (2 * middle, 2 * levels)}
    return {name: span for name, span in spans.items() if span[0] < span[1]}


def style_mixing_grid(model, z_sources, z_destinations, ranges=None, *, truncation_psi=1.0, noise_seed=0):
    """{range name: uint8 grid} for a progressive model; layout in the module docstring.

    z_sources [S, latent], z_destinations [D, latent]; each grid is (D + 1) x (S + 1) images.
    ranges: {name: (start, stop)} style-input index ranges (stop exclusive; (0, 0) keeps the
    destination, (0, num_styles) gives the source), default `mixing_ranges(model.level)`."""
    if not model.progressive:
        raise ValueError("style mixing needs a progressive (Style) model")
    ranges = mixing_ranges(model.level) if ranges is None else dict(ranges)
    num_styles = model.generator.num_styles
    for name, (start, stop) in ranges.items():
        if not 0 <= start <= stop <= num_styles:
            raise ValueError(f"style range {name!r} = ({start}, {stop}) is not within [0, {num_styles}]")
    sources = model.broadcast(_map(model, z_sources))  # [S, N, latent]
    destinations = model.broadcast(_map(model, z_destinations))  # [D, N, latent]
    count_s, count_d = sources.shape[0], destinations.shape[0]
    index = np.arange(num_styles)
    batches = [sources, destinations]
    for start, stop in ranges.values():
        take = tf.constant(((index >= start) & (index < stop))[np.newaxis, np.newaxis, :, np.newaxis])
        # [D, S, N, latent]: row j (destination) x column i (source).
        mixed = tf.where(take, sources[tf.newaxis], destinations[:, tf.newaxis])
        batches.append(tf.reshape(mixed, [count_d * count_s, num_styles, -1]))
    images = _render(model, model.truncate(tf.concat(batches, axis=0), truncation_psi), noise_seed)
    source_images, destination_images = images[:count_s], images[count_s : count_s + count_d]
    blank = np.zeros_like(images[:1])
    grids = {}
    offset = count_s + count_d
    for name in ranges:
        cells = images[offset : offset + count_d * count_s].reshape(count_d, count_s, *images.shape[1:])
        offset += count_d * count_s
        rows = [np.concatenate([blank, source_images])]
        rows += [np.concatenate([destination_images[j : j + 1], cells[j]]) for j in range(count_d)]
        grids[name] = image_grid(np.concatenate(rows), count_s + 1)
    return grids


def interpolation_grid(model, z_pairs=None, image_pairs=None, *, steps=8, truncation_psi=1.0, noise_seed=0):
    """One uint8 grid of latent interpolations, `steps` + 2 columns; layout in the module docstring.

    z_pairs: (z1, z2), each [P, latent]: rows between F(z1) and F(z2) (truncated, Style only).
    image_pairs: (x1, x2), each [Q, H, W, C] in [-1, 1] at the model's current resolution:
    rows between E(x1) and E(x2), x1 and x2 themselves in the first and last column."""
    if z_pairs is None and image_pairs is None:
        raise ValueError("pass z_pairs, image_pairs or both")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two ends), got {steps}")
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[np.newaxis, :, np.newaxis]  # exact 0 and 1 ends
    rows = []
    if z_pairs is not None:
        w1, w2 = _map(model, z_pairs[0]), _map(model, z_pairs[1])
        images = _render_w(model, _lerp(w1, w2, weights), truncation_psi, noise_seed)
        blank = np.zeros_like(images[:1])
        rows += [np.concatenate([blank, row, blank]) for row in _rows(images, steps)]
    if image_pairs is not None:
        x1, x2 = (tf.convert_to_tensor(x, tf.float32) for x in image_pairs)
        encodings = tf.cast(model.encode(tf.concat([x1, x2], axis=0)), tf.float32)
        e1, e2 = encodings[: x1.shape[0]], encodings[x1.shape[0] :]
        images = _render_w(model, _lerp(e1, e2, weights), 1.0, noise_seed)
        originals_1, originals_2 = to_uint8(x1), to_uint8(x2)
        rows += [np.concatenate([originals_1[p : p + 1], row, originals_2[p : p + 1]])
                 for p, row in enumerate(_rows(images, steps))]
    return image_grid(np.concatenate(rows), steps + 2)


def _map(model, z):
    return tf.cast(model.mapping_ema(tf.convert_to_tensor(z, tf.float32)), tf.float32)


def _lerp(w1, w2, weights):
    """[P, latent] x 2 -> [P * steps, latent]; (1 - t) w1 + t w2 is exactly w1 at t = 0 and w2 at t = 1."""
    w = (1.0 - weights) * w1[:, tf.newaxis] + weights * w2[:, tf.newaxis]
    return tf.reshape(w, [-1, w1.shape[-1]])


def _rows(images, steps):
    return [images[i : i + steps] for i in range(0, len(images), steps)]


def _render_w(model, w, truncation_psi, noise_seed):
    """w [B, latent] -> uint8 images (Style: one copy per style input, truncated)."""
    if not model.progressive:
        return _render(model, w, noise_seed)
    return _render(model, model.truncate(model.broadcast(w), truncation_psi), noise_seed)


def _render(model, styles, noise_seed):
    """G_ema on w [B, latent] (MLP) or styles [B, N, latent] (Style, with one shared noise draw) -> uint8."""
    if not model.progressive:
        return to_uint8(model.generator_ema(styles))
    batch = styles.shape[0]
    noise = [tf.repeat(n, batch, axis=0) for n in model.noise(1, NOISE_STREAMS["sample"], noise_seed)]
    return to_uint8(model.generator_ema(styles, level=model.level, noise=noise))
