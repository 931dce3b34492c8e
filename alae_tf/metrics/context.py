"""What every metric receives: the trained model's `Sampler`, the run's data and the evaluation settings.

Metrics are functions `metric(ctx: EvalContext) -> {name: float}`; they draw generated images,
encodings and reconstructions through the sampler and the helpers here, so every metric sees
the same nets, batching, seeding and uint8 quantisation (images are rounded to uint8 as a
saved PNG would be).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from alae_tf.config import PRIORLESS_KINDS
from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.errors import DataError
from alae_tf.progress import progress_bar

HOLDING_OUT = ("an image folder holds out a tenth of its images, none of fewer than 10; "
               "data.test_count in the config sets it")


@dataclass
class EvalContext:
    sampler: object  # alae_tf.inference.Sampler of the restored model (EMA nets, top level)
    config: object  # alae_tf.config.Config of the run
    data: object  # ImageSplits: uint8 train/test images (NHW or NHWC arrays, or ImageRows), labels (may be None)
    num_samples: int | None = None  # None: each metric's own default (FID: 50k, as the paper)
    seed: int = 0
    batch_size: int = 250
    ppl_crop: str = "none"  # the region PPL compares (alae_tf.metrics.ppl.CROPS)
    shared: dict = field(default_factory=dict)  # results metrics of one evaluation share (e.g. generated features)
    prior_noted: bool = False  # the plain-autoencoder note below is printed once
    samples_used: int | None = None  # the last sample_count answered (evaluate records it per metric)

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def sample_count(self, default: int) -> int:
        self.samples_used = self.num_samples or default
        return self.samples_used

    def latents(self, count: int, stream: int = 0) -> np.ndarray:
        """`count` standard normal z, a pure function of (seed, stream)."""
        kind = self.config.model.kind
        if kind in PRIORLESS_KINDS and not self.prior_noted:
            print(f"note: model.kind {kind} is a plain autoencoder: its G was never trained on z ~ N(0, I), so "
                  "metrics of its samples describe no generative model (its reconstructions and codes are what it learns)")
            self.prior_noted = True
        z = tf.random.stateless_normal([count, self.latent_dim], seed=[self.seed, 1000 + stream])
        return z.numpy()

    def generated_uint8(self, count: int, stream: int = 0, label: str = "generating", first: int = 0):
        """Yields uint8 NHWC batches of G(F(z)) (no truncation; fresh noise per image where G takes noise),
        images `first` (a whole number of batches) to `count` of the draw of `count` images."""
        if first % self.batch_size:
            raise ValueError(f"first must be a multiple of the batch size {self.batch_size}, got {first}")
        z = self.latents(count, stream)
        progress = _progress(label, count - first)
        for start in range(first, count, self.batch_size):
            batch = z[start : start + self.batch_size]
            # The noise is a pure function of (seed, stream) too.
            noise = self.sampler.noise(len(batch), self.seed * 1_000_003 + stream * 10_007 + start)
            images = to_uint8(self.sampler.generate(batch, noise=noise)).numpy()
            progress.add(len(images))
            yield images

    def reconstruction_batches(self, images_uint8: np.ndarray):
        """Yields (x, G(E(x))) float NHWC batches for uint8 images x, in order; seeded noise, as `generated_uint8`."""
        for start, batch in self._batches(images_uint8):
            noise = self.sampler.noise(len(batch), self.seed * 1_000_003 + start)
            yield batch, self.sampler.reconstruct(batch, noise=noise)

    def reconstructed_uint8(self, images_uint8: np.ndarray, label: str = "reconstructing"):
        """Yields uint8 NHWC batches of G(E(x)) for uint8 images x, in order."""
        progress = _progress(label, len(images_uint8))
        for _, reconstructed in self.reconstruction_batches(images_uint8):
            images = to_uint8(reconstructed).numpy()
            progress.add(len(images))
            yield images

    def encoded(self, images_uint8: np.ndarray, label: str = "encoding", features: bool = False) -> np.ndarray:
        """E(x) float32 [N, latent] for uint8 images x, in order; with `features` E's representation
        before its last linear map instead (Sampler.features)."""
        encode = self.sampler.features if features else self.sampler.encode
        progress = _progress(label, len(images_uint8))
        rows = []
        for _, batch in self._batches(images_uint8):
            rows.append(np.asarray(encode(batch), np.float32))
            progress.add(len(rows[-1]))
        return np.concatenate(rows)

    def _batches(self, images_uint8):
        """(start, batch in [-1, 1]) of uint8 images (an array or ImageRows, read a batch at a time)."""
        for start in range(0, len(images_uint8), self.batch_size):
            yield start, to_model_range(np.asarray(images_uint8[start : start + self.batch_size]))

    def real_images(self, split: str):
        """A split's ("train" or "test") uint8 NHWC images, as an array or ImageRows (read when sliced
        and asked for): index them a batch at a time, since data at 1024x1024 does not fit in memory."""
        images = self.data.train_images if split == "train" else self.data.test_images
        return images[..., np.newaxis] if images.ndim == 3 else images

    def real_uint8(self, split: str, count: int | None = None) -> np.ndarray:
        """The first `count` images of a split as a uint8 NHWC array (for data as small as MNIST)."""
        return np.asarray(self.real_images(split)[:count])


def require_held_out(ctx, metric: str, at_least: int = 1, why: str = "") -> None:
    """A DataError naming `metric` unless the run's data holds out `at_least` images (`why`: what for)."""
    held_out = len(ctx.data.test_images)
    if held_out < at_least:
        needed = "held-out images" if at_least == 1 else f"at least {at_least} held-out images"
        holds = "none" if held_out == 0 else f"only {held_out}"
        raise DataError(f"{metric} needs {needed}{why} and this run's data holds {holds} out ({HOLDING_OUT})")


def _progress(label: str, count: int):
    print(label)
    return progress_bar(count, unit_name="image")
