"""Figures of a model's latent spaces as uint8 image grids (no file I/O; see `alae_tf.png`).

- `style_mixing_grid`: the StyleGAN mixing figure. The top row holds the source images, the
  left column the destination images (the top-left cell is black); cell (row j, column i)
  renders destination j's styles with the style inputs of one range taken from source i.
  One grid per range ("coarse", "middle", "fine"; see `mixing_ranges`); a generator with a
  single style input (the MLP) has nothing to mix.
- `interpolation_grid`: one row per pair, `steps` images from one end to the other with linear
  interpolation in W: first the rows between mapped latents F(z1), F(z2), then the rows between
  encodings E(x1), E(x2) of held-out images, framed by the two real images (W rows get black
  frame cells so all rows line up). An encoder row's end images are the reconstructions.

Everything goes through a `Sampler` (its nets and level) and one noise draw shared by every
image of a grid (`noise_seed`), so images differ by their styles only and a call is
deterministic. Figures of real images take `noise`: such a seed, None (no noise), or the noise
images of each image (`ImageNoise`: projections whose noise was refined), which every image
made from that one keeps (its edits, its row of a mixing grid). Truncation (`truncation_psi`,
on F's first `truncation_cutoff` style inputs) applies to images from random latents, not to
encodings, like reconstructions.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.levels import mixing_ranges
from alae_tf.png import image_grid

@dataclass(frozen=True)
class ImageNoise:
    """G's noise images per image of a batch: `images` (one array [B, h, w, 1] per noise input of G)
    for the images where `given`, none (as noise None) for the others."""
    images: list  # empty when no image has any
    given: np.ndarray  # bool [B]

    @classmethod
    def none(cls, count) -> "ImageNoise":
        return cls([], np.zeros(count, bool))

    @classmethod
    def concat(cls, parts) -> "ImageNoise":
        """The batches of `parts` one after the other."""
        given = np.concatenate([part.given for part in parts])
        with_images = [part for part in parts if part.images]
        if not with_images:
            return cls([], given)
        shapes = [image.shape[1:] for image in with_images[0].images]
        images = [np.concatenate([part.images[i] if part.images else np.zeros((len(part.given), *shape), np.float32)
                                  for part in parts]) for i, shape in enumerate(shapes)]
        return cls(images, given)

    def take(self, rows) -> "ImageNoise":
        """The noise of images `rows` (indices into this batch), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return ImageNoise([np.asarray(n)[rows] for n in self.images], self.given[rows])


def style_mixing_grid(sampler, z_sources, z_destinations, ranges=None, *, truncation_psi=1.0, noise_seed=0):
    """{range name: uint8 grid}; layout in the module docstring.

    z_sources [S, latent], z_destinations [D, latent]; each grid is (D + 1) x (S + 1) images.
    ranges: {name: (start, stop)} style-input index ranges (stop exclusive; (0, 0) keeps the
    destination, (0, num_styles) gives the source), default `mixing_ranges` at the sampler's level."""
    if ranges is None:
        ranges = mixing_ranges(sampler.level, sampler.generator.styles_per_level)
    if not ranges:
        raise ValueError(f"style mixing needs two or more style inputs in use; this generator reads {sampler.styles_in_use}")
    # Truncation acts on each style input alone, so truncating before mixing equals truncating after.
    sources = sampler.truncate(sampler.styles(sampler.map(z_sources)), truncation_psi)
    destinations = sampler.truncate(sampler.styles(sampler.map(z_destinations)), truncation_psi)
    return mixing_grid_of_styles(sampler, sources, destinations, ranges, noise=noise_seed)


def mixing_grid_of_styles(sampler, sources, destinations, ranges, *, noise=0):
    """`style_mixing_grid`'s grids for given styles: sources [S, N, latent], destinations [D, N, latent]
    (e.g. the encodings of real images). `noise` (see the module docstring): an `ImageNoise` holds
    the S sources' then the D destinations' noise; a mixed cell keeps its destination's."""
    count_s, count_d = sources.shape[0], destinations.shape[0]
    batches = [sources, destinations]
    for start, stop in ranges.values():
        # [D, S, N, latent]: row j (destination) x column i (source).
        mixed = sampler.mix(destinations[:, tf.newaxis], sources[tf.newaxis], start, stop)
        batches.append(tf.reshape(mixed, [count_d * count_s, sampler.num_styles, -1]))
    if isinstance(noise, ImageNoise):
        cells = np.repeat(count_s + np.arange(count_d), count_s)  # row j's cells: destination j's noise
        noise = noise.take(np.concatenate([np.arange(count_s + count_d), *[cells] * len(ranges)]))
    images = render(sampler, tf.concat(batches, axis=0), noise)
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


def interpolation_grid(sampler, z_pairs=None, image_pairs=None, *, image_codes=None, steps=8, truncation_psi=1.0,
                       noise_seed=0, image_noise=None):
    """One uint8 grid of latent interpolations, `steps` + 2 columns; layout in the module docstring.

    z_pairs: (z1, z2), each [P, latent]: rows between F(z1) and F(z2) (truncated).
    image_pairs: (x1, x2), each [Q, H, W, C] in [-1, 1] at the sampler's resolution:
    rows between E(x1) and E(x2), x1 and x2 themselves in the first and last column;
    image_codes: (c1, c2), codes of x1 and x2 (w or styles, e.g. projections) to use instead of
    E(x1) and E(x2); image_noise: (n1, n2), `ImageNoise` of x1 and x2, for the image rows instead of
    `noise_seed`'s draw: a row between two images that both have noise images goes from one's to
    the other's (linearly, as the codes), any other row has none."""
    if z_pairs is None and image_pairs is None:
        raise ValueError("pass z_pairs, image_pairs or both")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two ends), got {steps}")
    rows = []
    if z_pairs is not None:
        w = sampler.interpolate(sampler.map(z_pairs[0]), sampler.map(z_pairs[1]), steps)
        images = render(sampler, sampler.truncate(sampler.styles(w), truncation_psi), noise_seed)
        blank = np.zeros_like(images[:1])
        rows += [np.concatenate([blank, row, blank]) for row in _rows(images, steps)]
    if image_pairs is not None:
        x1, x2 = (tf.convert_to_tensor(x, tf.float32) for x in image_pairs)
        if image_codes is None:
            encodings = sampler.encode(tf.concat([x1, x2], axis=0))
            e1, e2 = encodings[: x1.shape[0]], encodings[x1.shape[0] :]
        else:
            e1, e2 = (sampler.as_styles(codes) for codes in image_codes)
        noise = noise_seed if image_noise is None else _interpolated_noise(sampler, *image_noise, steps)
        images = render(sampler, sampler.interpolate(e1, e2, steps), noise)
        originals_1, originals_2 = to_uint8(x1).numpy(), to_uint8(x2).numpy()
        rows += [np.concatenate([originals_1[p : p + 1], row, originals_2[p : p + 1]])
                 for p, row in enumerate(_rows(images, steps))]
    return image_grid(np.concatenate(rows), steps + 2)


def _rows(images, steps):
    return [images[i : i + steps] for i in range(0, len(images), steps)]


def _interpolated_noise(sampler, first: ImageNoise, last: ImageNoise, steps) -> ImageNoise:
    both = first.given & last.given
    if not both.any():
        return ImageNoise.none(len(both) * steps)
    images = [sampler.interpolate(a, b, steps).numpy() for a, b in zip(first.images, last.images)]
    return ImageNoise(images, np.repeat(both, steps))  # a row with noise at one end only has none


# Values per encoder or generator call of the figures and editing tools (~16 MB of float32
# images): a figure of thousands of images (edit interpolate --steps 100000) never holds all
# their activations at once. 1,365 images at 32x32x3, 21 at 256x256x3, 1 at 1024x1024x3.
VALUES_PER_CALL = 2**22


def images_per_call(image_shape) -> int:
    return max(1, VALUES_PER_CALL // int(np.prod(image_shape)))


def render(sampler, w_or_styles, noise=0):
    """G on w [B, latent] or styles [B, N, latent] -> uint8 numpy, `images_per_call` at a time;
    `noise`: a seed (one draw shared by every image), None (no noise) or an `ImageNoise` (each
    image's own, or none)."""
    codes = np.asarray(w_or_styles, np.float32)
    images = np.zeros((len(codes), *sampler.image_shape), np.uint8)
    step = images_per_call(sampler.image_shape)
    for start in range(0, len(codes), step):
        rows = np.arange(start, min(start + step, len(codes)))
        images[rows] = _render_call(sampler, codes[rows], noise.take(rows) if isinstance(noise, ImageNoise) else noise)
    return images


def _render_call(sampler, codes, noise):
    if not isinstance(noise, ImageNoise):
        draw = None if noise is None else sampler.noise(len(codes), noise, shared=True)
        return to_uint8(sampler.decode(codes, noise=draw)).numpy()
    given = noise.given
    images = np.zeros((len(codes), *sampler.image_shape), np.uint8)
    if (~given).any():
        images[~given] = to_uint8(sampler.decode(codes[~given])).numpy()
    if given.any():
        images[given] = to_uint8(sampler.decode(codes[given], noise=[n[given] for n in noise.images])).numpy()
    return images


def in_calls(sampler, count, images_of_rows) -> np.ndarray:
    """uint8 numpy of images_of_rows(slice) over `count` rows, `images_per_call` at a time."""
    step = images_per_call(sampler.image_shape)
    return np.concatenate([to_uint8(images_of_rows(slice(start, start + step))).numpy() for start in range(0, count, step)])


def encode_in_calls(sampler, images_uint8) -> np.ndarray:
    """w = E(images) as float32 numpy, `images_per_call` at a time; images uint8 [N, H, W, C]."""
    step = images_per_call(sampler.image_shape)
    codes = [sampler.encode(to_model_range(images_uint8[start:start + step])).numpy()
             for start in range(0, len(images_uint8), step)]
    return np.concatenate(codes) if codes else np.zeros((0, sampler.latent_dim), np.float32)
