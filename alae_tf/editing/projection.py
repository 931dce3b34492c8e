"""Projection: latents that reconstruct given images better than the encoder alone.

Start from w = E(x) and minimise, per image, LPIPS(G(.), x) + mse_weight * mean((G(.) - x)^2)
with Adam (learning rate cosine-decayed to 0 over the steps) over

- w [B, latent] (one w on every style input), or with `per_layer` the styles [B, num_styles,
  latent] (w+, one w per style input of G, started from E(x) on every input);
- and with `optimize_noise` G's per-pixel noise images too (started from zero, i.e. no noise,
  with noise_weight * mean(noise^2) added so the noise does not paint the image; a generator
  without noise inputs, the MLP, has none to optimise).

LPIPS is our VGG16 port (alae_tf.metrics.lpips) on images resized (bilinear) to a side of 64
to 256: 28x28 digits are too small for VGG16's five poolings, and 64x64 is the patch size LPIPS
was calibrated on; large images are shrunk to 256 as StyleGAN2's projector does.

The loss and the errors reported (encoder_*, lpips, mse) are those of the images as shown and
saved, clipped to [-1, 1] as evaluate's reconstruction error clips them; the loss's gradient
passes the clip as if it were not there (straight through), so a pixel beyond the range whose
target lies inside is still pulled back, and one beyond it on the target's side (a background
darker than black) costs nothing. (Until 2026-12-05 both read the unclipped output: an audit's
16 digits read 0.361 -> 0.152 MSE there against 0.254 -> 0.125 as shown.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from alae_tf.metrics.lpips import LPIPS
from alae_tf.progress import progress_bar

LPIPS_MIN_SIDE, LPIPS_MAX_SIDE = 64, 256


@dataclass(frozen=True)
class Projection:
    styles: np.ndarray  # [B, num_styles, latent]
    noise: list[np.ndarray] | None  # G's noise images, None: no noise
    images: np.ndarray  # G(styles, noise), float32 [B, H, W, C]
    encoder_lpips: np.ndarray  # [B], the reconstruction G(E(x)) (no noise) against x
    encoder_mse: np.ndarray
    lpips: np.ndarray  # [B], the projection against x
    mse: np.ndarray

    @classmethod
    def joined(cls, parts: list[Projection]) -> Projection:
        """The projections of several batches as one, in order (an image's projection does not
        depend on the others in its batch: the loss is a sum over images, Adam elementwise)."""
        noise = None if parts[0].noise is None else [np.concatenate(maps) for maps in zip(*(p.noise for p in parts))]
        fields = ("styles", "images", "encoder_lpips", "encoder_mse", "lpips", "mse")
        return cls(noise=noise, **{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


@functools.lru_cache(maxsize=1)
def shared_lpips() -> LPIPS:
    """One LPIPS per process: its weights load once and its traced graphs are reused."""
    return LPIPS()


class ProjectionDistance:
    """Per-image LPIPS and MSE between float NHWC batches in [-1, 1]; LPIPS sees the images
    resized to a side within [min_side, LPIPS_MAX_SIDE]."""

    def __init__(self, lpips: LPIPS | None = None, min_side: int = LPIPS_MIN_SIDE):
        self._lpips = lpips or shared_lpips()
        self.min_side = min_side

    def __call__(self, images, targets):
        return self.to(targets)(images)

    def to(self, targets):
        """images -> (per-image LPIPS, per-image MSE) against `targets`, whose VGG16 features are
        taken once here: each projection step then runs VGG16 on its own images only (a forward
        pass of the targets less per step)."""
        targets = tf.convert_to_tensor(targets, tf.float32)
        side = int(np.clip(targets.shape[1], self.min_side, LPIPS_MAX_SIDE))
        resize = lambda x: tf.image.resize(x, [side, side], method="bilinear")  # noqa: E731
        features = self._lpips.features(resize(targets))

        def distance(images):
            mse = tf.reduce_mean(tf.square(images - targets), axis=[1, 2, 3])
            return self._lpips.distance_to(resize(images), features), mse

        return distance


def project(sampler, images, *, steps=200, learning_rate=0.01, mse_weight=1.0, per_layer=False,
            optimize_noise=False, noise_weight=1.0, distance: ProjectionDistance | None = None,
            verbose=True) -> Projection:
    """Project float images [B, H, W, C] in [-1, 1] (the sampler's resolution); see the module docstring."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")

    def shown(images):  # as every saved image: clipped to [-1, 1]
        return tf.clip_by_value(images, -1.0, 1.0)

    targets = tf.convert_to_tensor(images, tf.float32)
    distance = (distance or ProjectionDistance()).to(targets)
    batch = targets.shape[0]
    w = sampler.encode(targets)
    latents = tf.Variable(sampler.styles(w) if per_layer else w, name="latents")
    noise = [tf.Variable(tf.zeros([batch, *shape]), name=f"noise_{i}")
             for i, shape in enumerate(sampler.noise_shapes)] if optimize_noise else None
    variables = [latents] + (noise or [])
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1)))

    def losses():
        """(per-image LPIPS, per-image MSE, total loss)."""
        images = sampler.decode(latents, noise)
        perceptual, mse = distance(images + tf.stop_gradient(shown(images) - images))  # shown, straight through
        total = tf.reduce_sum(perceptual + mse_weight * mse)
        for image in noise or []:
            total += noise_weight * tf.reduce_sum(tf.reduce_mean(tf.square(image), axis=[1, 2, 3]))
        return perceptual, mse, total

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            perceptual, mse, total = losses()
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return tf.reduce_mean(perceptual), tf.reduce_mean(mse)

    encoder_lpips, encoder_mse = distance(shown(sampler.decode(w)))  # the plain reconstruction
    progress = progress_bar(steps, stateful_metrics=["lpips", "mse"], verbose=verbose)
    for index in range(steps):
        perceptual, mse = step()
        progress.update(index + 1, [("lpips", float(perceptual)), ("mse", float(mse))])
    noise_arrays = [n.numpy() for n in noise] if noise is not None else None
    styles = sampler.as_styles(latents)
    projected = sampler.decode(styles, noise)
    final_lpips, final_mse = distance(shown(projected))
    return Projection(styles.numpy(), noise_arrays, projected.numpy(),
                      encoder_lpips.numpy(), encoder_mse.numpy(), final_lpips.numpy(), final_mse.numpy())
