"""The one tf.data pipeline: uint8 images -> batches of float32 NHWC in [-1, 1] plus latents.

Batch k (counting from the start of training) is a pure function of (images, seed, k): the
epoch's order is a seeded permutation and the step's latents are stateless draws keyed by k.
Starting the pipeline at `start_step` therefore continues a run exactly where it stopped.
"""

import numpy as np
import tensorflow as tf

LATENT_KEYS = ("z_d", "z_g", "z_ae")  # latents of step I (D), step II (G), step III (reciprocity)


def to_model_range(images_uint8):
    """uint8 [N, H, W] or [N, H, W, C] -> float32 NHWC in [-1, 1]."""
    images = tf.convert_to_tensor(images_uint8)
    if images.shape.rank == 3:
        images = images[..., tf.newaxis]
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float NHWC in [-1, 1] -> uint8 numpy, clipped."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def step_latents(step, seed, batch_size, latent_dim, keys=LATENT_KEYS):
    """The latents of training step `step`: one [batch, latent] normal draw per key, keyed by (seed, step)."""
    latents = {}
    for k, key in enumerate(keys):
        latent_seed = tf.stack([tf.cast(seed, tf.int64) * 3 + k + 1, tf.cast(step, tf.int64)])
        latents[key] = tf.random.stateless_normal([batch_size, latent_dim], seed=latent_seed)
    return latents


def training_batches(images_uint8, *, batch_size, latent_dim, seed, start_step=0):
    """Endless dataset of {"images", "z_d", "z_g", "z_ae"} batches from step `start_step` on."""
    num_images = len(images_uint8)
    if num_images < batch_size:
        raise ValueError(f"batch size {batch_size} is larger than the dataset ({num_images} images)")
    steps_per_epoch = num_images // batch_size
    images = tf.constant(images_uint8)

    def epoch_batches(epoch):
        order = tf.argsort(tf.random.stateless_uniform([num_images], seed=tf.stack([seed, epoch])))
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[: steps_per_epoch * batch_size], [steps_per_epoch, batch_size]))

    def assemble(step, indices):
        return {"images": to_model_range(tf.gather(images, indices)), **step_latents(step, seed, batch_size, latent_dim)}

    first_epoch = start_step // steps_per_epoch
    index_batches = (
        tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
        .flat_map(epoch_batches)
        .skip(start_step - first_epoch * steps_per_epoch)
    )
    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return without_autotune(tf.data.Dataset.zip(steps, index_batches).map(assemble).prefetch(2))


def eval_batches(images_uint8, batch_size=500):
    """Finite dataset of image batches in [-1, 1], in order (for encoding and metrics)."""
    return without_autotune(tf.data.Dataset.from_tensor_slices(images_uint8).batch(batch_size).map(to_model_range))


def without_autotune(dataset):
    """tf.data's autotuner costs a core's share on small CPUs and, on iterator teardown (the end of
    every `fit`), stalled ~3 s in a third of our runs; a fixed 2-batch prefetch keeps up easily."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
