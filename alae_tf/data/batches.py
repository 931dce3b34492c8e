"""The one tf.data pipeline: an image source and a schedule phase -> training batches, for every backbone.

Every batch carries the full schema of `alae_tf.batch`: the phase's images as float32 NHWC in
[-1, 1] (blended with their coarser picture while the level fades in) and every random draw of its
step (latents, style-mixing latents and crossover points, fade-in blend, noise seed). Batch k (a
global step) is a pure function of (data, seed, k): the images are elements [images_before(k),
+ batch) of the source's seeded stream, and the draws are stateless, keyed by (seed, k). Starting
at any step, on any number of replicas, continues a run exactly where it stopped.

Also here: the library's uint8 <-> [-1, 1] conversions, and in-order batches for evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from alae_tf import batch as schema
from alae_tf.schedule import Phase, blend_at

if TYPE_CHECKING:
    from alae_tf.data.source import ImageSource

PREFETCH_BATCHES = 2


def to_model_range(images_uint8) -> tf.Tensor:
    """uint8 [N, H, W] or [N, H, W, C] -> float32 NHWC in [-1, 1]."""
    images = tf.convert_to_tensor(images_uint8)
    if images.shape.rank == 3:
        images = images[..., tf.newaxis]
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images) -> tf.Tensor:
    """float NHWC in [-1, 1] -> uint8 [0, 255], rounded half to even (tf.round) and clipped. Graph-safe."""
    pixels = (tf.cast(images, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)


def training_batches(source: ImageSource, phase: Phase, *, start_step: int, latent_dim: int, seed: int,
                     num_styles: int, styles_in_use: int, mixing_probability: float,
                     random_flip: bool = False) -> tf.data.Dataset:
    """Endless batches of `phase` from global step `start_step` on (see the module docstring).

    num_styles: style inputs of G (1 for the MLP); styles_in_use: those the phase's levels read;
    mixing_probability: chance that a row of steps I and II mixes two latents; random_flip: each
    image flipped left-right with probability 1/2 (`randomly_flipped`).
    """
    if start_step < phase.first_step or (phase.end_step is not None and start_step >= phase.end_step):
        last = "on" if phase.end_step is None else f"to {phase.end_step - 1}"
        raise ValueError(f"step {start_step} is outside level {phase.level} (steps {phase.first_step} {last})")
    size = phase.batch_size
    if size > source.num_train:
        raise ValueError(f"batch size {size} is larger than the dataset ({source.num_train} training images)")
    images = source.train_dataset(phase.resolution, seed=seed, start_index=phase.images_before(start_step),
                                  batch_size=size)

    def assemble(step, image_batch):
        blend = tf.cast(blend_at(phase, step), tf.float32)
        images = to_model_range(image_batch)
        if random_flip:
            images = randomly_flipped(images, step, seed)
        if phase.fade_images:
            images = faded_in(images, blend)
        batch = {schema.IMAGES: images, **step_latents(step, seed, size, latent_dim)}
        batch.update(style_mixing_draws(step, seed, size, latent_dim, styles_in_use=styles_in_use,
                                        num_styles=num_styles, probability=mixing_probability))
        batch[schema.BLEND] = tf.fill([size], blend)
        batch[schema.NOISE_SEED] = tf.fill([size], step)
        return batch

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    batches = without_autotune(tf.data.Dataset.zip(steps, images).map(assemble).prefetch(PREFETCH_BATCHES))
    # Several workers: each builds every global batch and keeps its replicas' share of it (the
    # split MirroredStrategy makes on one machine), so the batches do not depend on the worker count.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def randomly_flipped(images, step, seed) -> tf.Tensor:
    """Each image [B, H, W, C] flipped left-right with probability 1/2, drawn per image keyed by
    (seed, step) as the other draws are: the same on a resume and on any number of replicas."""
    # A seed pair disjoint from step_latents' (positive) and style_mixing_draws' (-(seed * 8 + 1 or 2)).
    key = tf.stack([-(tf.cast(seed, tf.int64) * 8 + 7), tf.cast(step, tf.int64)])
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed=key) < 0.5
    return tf.where(flip[:, tf.newaxis, tf.newaxis, tf.newaxis], tf.reverse(images, axis=[2]), images)


def faded_in(images, blend) -> tf.Tensor:
    """Real images [B, H, W, C] of a level fading in, as the reference blends them (its
    train_alae.py): `blend` of the images plus 1 - blend of the level below's picture of them (2x2
    means, upsampled nearest), what G makes as it fades the level in."""
    coarse = tf.nn.avg_pool2d(images, 2, 2, "VALID")
    coarse = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)
    return blend * images + (1.0 - blend) * coarse


def step_latents(step, seed, batch_size, latent_dim) -> dict:
    """The latents z of every update of step `step`: [batch, latent] standard normal, keyed by (seed, step)."""
    latents = {}
    for k, update in enumerate(schema.UPDATES):
        latent_seed = tf.stack([tf.cast(seed, tf.int64) * 3 + k + 1, tf.cast(step, tf.int64)])
        latents[update.z] = tf.random.stateless_normal([batch_size, latent_dim], seed=latent_seed)
    return latents


def style_mixing_draws(step, seed, batch_size, latent_dim, *, styles_in_use, num_styles, probability) -> dict:
    """Second latents and per-row crossover points of the style-mixing updates (steps I and II).

    With `probability`, styles from the crossover point on come from the second latent; the point is
    uniform in [1, styles_in_use); otherwise it is `num_styles` (no mixing). With one style in use
    every point is 1: only styles the phase does not read could come from the second latent.
    """
    draws = {}
    for k, update in enumerate(schema.MIXING_UPDATES):
        # A seed pair disjoint from step_latents' (those are seed * 3 + k + 1 > 0, these negative).
        base = tf.stack([-(tf.cast(seed, tf.int64) * 8 + k + 1), tf.cast(step, tf.int64)])
        draws[update.z_mix] = tf.random.stateless_normal([batch_size, latent_dim], seed=base)
        mix = tf.random.stateless_uniform([batch_size], seed=base + [0, 1 << 40]) < probability
        point = tf.random.stateless_uniform([batch_size], seed=base + [0, 2 << 40], minval=1,
                                            maxval=max(2, styles_in_use), dtype=tf.int32)
        draws[update.crossover] = tf.where(mix, point, num_styles)
    return draws


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """tf.data's autotuner costs a core's share on small CPUs and, on iterator teardown (the end of
    every `fit`), stalled ~3 s in a third of our runs; fixed parallelism and prefetch keep up easily."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
