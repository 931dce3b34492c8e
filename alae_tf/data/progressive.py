"""Training batches for progressive growing (StyleALAE).

Batch k carries the images of its level and every random draw of step k: the three latents
of the MLP pipeline, the style-mixing latents and crossover points of steps I and II, the
fade-in blend and the noise seed. All are pure functions of (seed, k), so a resumed run, or
one split over replicas, makes the same updates as an uninterrupted single-device run.
"""

import numpy as np
import tensorflow as tf

from alae_tf.data.pipeline import step_latents, to_model_range, without_autotune
from alae_tf.schedule import Phase

MIX_KEYS = ("z_d_mix", "z_g_mix")


def style_mixing_draws(step, seed, batch_size, latent_dim, *, num_active_styles, num_styles, probability):
    """Second latents and per-image crossover points for steps I and II.

    With `probability`, styles from the crossover point on come from the second latent; the
    point is uniform in [1, num_active_styles); otherwise it is `num_styles` (no mixing)."""
    draws = {}
    for k, key in enumerate(("d", "g")):
        # A seed pair disjoint from step_latents' (seed * 3 + k + 1 > 0, here negative).
        base = tf.stack([-(tf.cast(seed, tf.int64) * 8 + k + 1), tf.cast(step, tf.int64)])
        draws[f"z_{key}_mix"] = tf.random.stateless_normal([batch_size, latent_dim], seed=base)
        mix = tf.random.stateless_uniform([batch_size], seed=base + [0, 1 << 40]) < probability
        point = tf.random.stateless_uniform([batch_size], seed=base + [0, 2 << 40], minval=1,
                                            maxval=max(2, num_active_styles), dtype=tf.int32)
        draws[f"crossover_{key}"] = tf.where(mix, point, num_styles)
    return draws


def blend_tensor(phase: Phase, step):
    """schedule.blend_at in TensorFlow ops, for the pipeline."""
    if phase.fade_images == 0:
        return tf.constant(1.0)
    t = tf.minimum(1.0, tf.cast(step - phase.first_step, tf.float32) * phase.batch_size / phase.fade_images)
    return tf.sin(t * np.pi - np.pi / 2) / 2 + 0.5


def style_batches(source, phase: Phase, *, start_step, latent_dim, seed, num_styles, mixing_probability):
    """Endless batches of `phase` from global step `start_step` on (see the module docstring)."""
    batch = phase.batch_size
    images = (
        source.train_dataset(phase.resolution, seed=seed, start_index=phase.images_before(start_step))
        .batch(batch, drop_remainder=True)
    )
    active_styles = 2 * (phase.level + 1)

    def assemble(step, image_batch):
        draws = {"images": to_model_range(image_batch), **step_latents(step, seed, batch, latent_dim)}
        draws.update(style_mixing_draws(step, seed, batch, latent_dim, num_active_styles=active_styles,
                                        num_styles=num_styles, probability=mixing_probability))
        draws["blend"] = tf.fill([batch], blend_tensor(phase, step))
        draws["noise_seed"] = tf.fill([batch], tf.cast(step, tf.int64))
        return draws

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return without_autotune(tf.data.Dataset.zip(steps, images).map(assemble).prefetch(2))
