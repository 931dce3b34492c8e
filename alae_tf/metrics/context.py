"""What every metric receives: the trained model, the run's data and the evaluation settings.

Metrics are functions `metric(ctx: EvalContext) -> {name: float}`; they draw generated images
and reconstructions through the helpers here, so every metric sees the same batching, seeding
and uint8 quantisation (images are rounded to uint8 as a saved PNG would be).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from alae_tf.data.pipeline import eval_batches, to_uint8


@dataclass
class EvalContext:
    model: object  # alae_tf.model.ALAE, restored from a checkpoint
    config: object  # alae_tf.config.Config of the run
    data: object  # ImageSplits: uint8 train/test images (NHW or NHWC), labels (may be None)
    num_samples: int | None = None  # None: each metric's own default (FID: 50k, as the paper)
    seed: int = 0
    batch_size: int = 250
    shared: dict = field(default_factory=dict)  # results metrics of one evaluation share (e.g. generated features)

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def sample_count(self, default: int) -> int:
        return self.num_samples or default

    def latents(self, count: int, stream: int = 0) -> np.ndarray:
        """`count` standard normal z, a pure function of (seed, stream)."""
        z = tf.random.stateless_normal([count, self.latent_dim], seed=[self.seed, 1000 + stream])
        return z.numpy()

    def generated_uint8(self, count: int, stream: int = 0, label: str = "generating"):
        """Yields uint8 NHWC batches of G_ema(F_ema(z)) (no truncation; StyleALAE with random noise), `count` images in all."""
        z = self.latents(count, stream)
        progress = _progress(label, count)
        for start in range(0, count, self.batch_size):
            # StyleALAE: fresh noise per batch, also a pure function of (seed, stream).
            noise_seed = self.seed * 1_000_003 + stream * 10_007 + start
            images = to_uint8(self.model.generate(z[start : start + self.batch_size], noise_seed=noise_seed))
            progress.add(len(images))
            yield images

    def reconstructed_uint8(self, images_uint8: np.ndarray, label: str = "reconstructing"):
        """Yields uint8 NHWC batches of G_ema(E(x)) for uint8 images x, in order."""
        progress = _progress(label, len(images_uint8))
        for batch in eval_batches(images_uint8, self.batch_size):
            images = to_uint8(self.model(batch))
            progress.add(len(images))
            yield images

    def real_uint8(self, split: str, count: int | None = None) -> np.ndarray:
        """The first `count` images of a split ("train" or "test") as uint8 NHWC."""
        images = self.data.train_images if split == "train" else self.data.test_images
        images = images[:count] if count is not None else images
        return images[..., np.newaxis] if images.ndim == 3 else images


def _progress(label: str, count: int) -> keras.utils.Progbar:
    print(label)
    return keras.utils.Progbar(count, unit_name="image")
