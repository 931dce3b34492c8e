"""Training callbacks: periodic checkpoints, scalar logs and image grids.

Both act on the model's own step counter (`model.step`, checkpointed with the weights), so
several `fit` calls and resumed runs share one axis.
"""

import csv
import functools
import math

import keras
import numpy as np
import tensorflow as tf

from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.errors import ALAEError
from alae_tf.grids import interpolation_grid, mixing_ranges, style_mixing_grid
from alae_tf.inference import Sampler
from alae_tf.png import image_grid, save_png


class StepCallback(keras.callbacks.Callback):
    """Calls `on_step(step, logs)` after every train batch with the model's step count."""

    def on_train_batch_end(self, batch, logs=None):
        self.on_step(self.model.step, logs or {})

    def on_step(self, step, logs):
        raise NotImplementedError


class CheckpointSaver(StepCallback):
    """Saves every `every` steps and when training ends (also on an interrupted run's way out)."""

    def __init__(self, manager: tf.train.CheckpointManager, every: int):
        super().__init__()
        self.manager = manager
        self.every = every

    def on_step(self, step, logs):
        if step % self.every == 0:
            self.save()

    def on_train_end(self, logs=None):
        self.save()

    def save(self):
        step = self.model.step  # the weights' own step, also after an interrupt
        if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(f"-{step}"):
            self.manager.save(checkpoint_number=step)


class TrainingMonitor(StepCallback):
    """Scalars to TensorBoard and `log.csv` every `log_every` steps; image grids (EMA nets) to
    `samples/<name>_<step>.png` and TensorBoard every `sample_every` steps and at the end:
    samples, reconstructions, interpolations (between mapped latents and between encodings of
    held-out images) and, for generators with several style inputs, style_mixing_<range> (see
    `alae_tf.grids`). All through `Sampler.from_model` at the level being trained.

    `test_images(resolution, count)` gives held-out uint8 images at that level's resolution."""

    MIXING_SOURCES, MIXING_DESTINATIONS = 5, 4  # a 6 x 5 grid per range
    INTERPOLATION_ROWS, INTERPOLATION_STEPS = 3, 8  # rows of each kind, 10 columns with the ends

    def __init__(self, run, *, test_images, latent_dim, seed, log_every, sample_every, truncation_psi=1.0, columns=8):
        super().__init__()
        self.run = run
        self.log_every = log_every
        self.sample_every = sample_every
        self.columns = columns
        self.truncation_psi = truncation_psi
        self.fixed_z = tf.random.stateless_normal([columns * columns, latent_dim], seed=[seed, 12345])
        self.mixing_z = tf.random.stateless_normal(
            [self.MIXING_SOURCES + self.MIXING_DESTINATIONS, latent_dim], seed=[seed, 23456])
        self.interpolation_z = tf.random.stateless_normal([2 * self.INTERPOLATION_ROWS, latent_dim], seed=[seed, 34567])
        # Read once per resolution, not at every grid (a folder source decodes files).
        self.test_images = functools.lru_cache(maxsize=None)(test_images)
        self.writer = tf.summary.create_file_writer(str(run.logs))

    def on_step(self, step, logs):
        if step % self.log_every == 0:
            self.log_scalars(step, logs)
        if step % self.sample_every == 0:
            self.write_grids(step)

    def on_train_end(self, logs=None):
        self.write_grids(self.model.step)

    def log_scalars(self, step, logs):
        values = {name: float(value) for name, value in logs.items()}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise ALAEError(
                f"training diverged at step {step} ({', '.join(bad)} not finite); "
                f"the last good checkpoint is in {self.run.checkpoints}"
            )
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        new_file = not self.run.log_csv.exists()
        with self.run.log_csv.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(["step", *values])
            writer.writerow([step, *values.values()])

    def write_grids(self, step):
        sampler = Sampler.from_model(self.model, level=self.model.level)
        samples = to_uint8(sampler.generate(self.fixed_z, self.truncation_psi, noise=sampler.noise(len(self.fixed_z), 0)))
        test_images = to_model_range(self.test_images(sampler.image_shape[0], self.columns * self.columns // 2))
        reconstructions = to_uint8(sampler.reconstruct(test_images, noise=sampler.noise(len(test_images), 0))).numpy()
        originals = to_uint8(test_images).numpy()
        # Rows alternate: originals, then their reconstructions underneath.
        pairs = np.concatenate(
            [np.concatenate([originals[i : i + self.columns], reconstructions[i : i + self.columns]])
             for i in range(0, len(originals), self.columns)]
        )
        grids = {"samples": image_grid(samples.numpy(), self.columns), "reconstructions": image_grid(pairs, self.columns)}
        grids.update(self.latent_grids(sampler, test_images))
        with self.writer.as_default(step=step):
            for name, grid in grids.items():
                save_png(grid, self.run.samples / f"{name}_{step:07d}.png")
                tf.summary.image(name, grid[np.newaxis], max_outputs=1)
        self.writer.flush()

    def latent_grids(self, sampler, test_images):
        """Interpolations and style mixing at the sampler's level; a few dozen images each."""
        rows = self.INTERPOLATION_ROWS
        pairs = min(rows, len(test_images) // 2)
        image_pairs = (test_images[0 : 2 * pairs : 2], test_images[1 : 2 * pairs : 2]) if pairs else None
        z_pairs = (self.interpolation_z[:rows], self.interpolation_z[rows:])
        grids = {"interpolations": interpolation_grid(sampler, z_pairs, image_pairs, steps=self.INTERPOLATION_STEPS,
                                                      truncation_psi=self.truncation_psi)}
        if mixing_ranges(sampler.level, sampler.generator.styles_per_level):
            sources, destinations = self.mixing_z[: self.MIXING_SOURCES], self.mixing_z[self.MIXING_SOURCES :]
            mixing = style_mixing_grid(sampler, sources, destinations, truncation_psi=self.truncation_psi)
            grids.update({f"style_mixing_{name}": grid for name, grid in mixing.items()})
        return grids
