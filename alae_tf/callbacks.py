"""Training callbacks: periodic checkpoints, scalar logs and image grids.

Both count the global step themselves (one tick per train batch), starting from the model's
`trained_steps` when `fit` begins, so several `fit` calls and resumed runs share one axis.
"""

import csv
import functools
import math

import keras
import numpy as np
import tensorflow as tf

from alae_tf.data.pipeline import to_model_range, to_uint8
from alae_tf.errors import ALAEError
from alae_tf.schedule import level_resolution
from alae_tf.grids import interpolation_grid, style_mixing_grid
from alae_tf.images import image_grid, save_png


class StepCounter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.step = int(self.model.trained_steps.numpy())

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.on_step(self.step, logs or {})

    def on_step(self, step, logs):
        raise NotImplementedError


class CheckpointSaver(StepCounter):
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
        step = int(self.model.trained_steps.numpy())  # the weights' own step, also after an interrupt
        if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(f"-{step}"):
            self.manager.save(checkpoint_number=step)


class TrainingMonitor(StepCounter):
    """Scalars to TensorBoard and `log.csv` every `log_every` steps; image grids (EMA nets) to
    `samples/<name>_<step>.png` and TensorBoard every `sample_every` steps and at the end:
    samples, reconstructions, interpolations (between encodings of held-out images; Style: also
    between mapped latents) and, Style only, style_mixing_<range> (see `alae_tf.grids`).

    `test_images(resolution, count)` gives held-out uint8 images; a progressive model's grids
    are at the resolution of the level it is training."""

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
        self.write_grids(self.step)

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
        model = self.model
        resolution = level_resolution(model.level) if model.progressive else None
        samples = to_uint8(model.generate(self.fixed_z, truncation_psi=self.truncation_psi))
        test_images = to_model_range(self.test_images(resolution, self.columns * self.columns // 2))
        reconstructions = to_uint8(model(test_images))
        originals = to_uint8(test_images)
        # Rows alternate: originals, then their reconstructions underneath.
        pairs = np.concatenate(
            [np.concatenate([originals[i : i + self.columns], reconstructions[i : i + self.columns]])
             for i in range(0, len(originals), self.columns)]
        )
        grids = {"samples": image_grid(samples, self.columns), "reconstructions": image_grid(pairs, self.columns)}
        grids.update(self.latent_grids(test_images))
        with self.writer.as_default(step=step):
            for name, grid in grids.items():
                save_png(grid, self.run.samples / f"{name}_{step:07d}.png")
                tf.summary.image(name, grid[np.newaxis], max_outputs=1)
        self.writer.flush()

    def latent_grids(self, test_images):
        """Interpolations and (Style) style mixing at the current level; a few dozen images each."""
        model, rows = self.model, self.INTERPOLATION_ROWS
        pairs = min(rows, len(test_images) // 2)
        image_pairs = (test_images[0 : 2 * pairs : 2], test_images[1 : 2 * pairs : 2]) if pairs else None
        z_pairs = (self.interpolation_z[:rows], self.interpolation_z[rows:]) if model.progressive else None
        grids = {}
        if image_pairs is not None or z_pairs is not None:
            grids["interpolations"] = interpolation_grid(model, z_pairs, image_pairs, steps=self.INTERPOLATION_STEPS,
                                                         truncation_psi=self.truncation_psi)
        if model.progressive:
            sources, destinations = self.mixing_z[: self.MIXING_SOURCES], self.mixing_z[self.MIXING_SOURCES :]
            mixing = style_mixing_grid(model, sources, destinations, truncation_psi=self.truncation_psi)
            grids.update({f"style_mixing_{name}": grid for name, grid in mixing.items()})
        return grids
