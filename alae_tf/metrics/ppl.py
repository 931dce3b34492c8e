"""Perceptual path length in W (Karras et al. 2019), as the StyleGAN and ALAE metric code do.

For z0, z1 ~ N(0, I): w0, w1 = F_ema(z0), F_ema(z1); t ~ U(0, 1) ("full") or t = 0 ("end": the
path's end points; the reference code's `lerp_t * 0`, which by the symmetry of (w0, w1) also
covers t = 1, to first order in eps); the length of the step from lerp(w0, w1, t) to
lerp(w0, w1, t + eps), eps = 1e-4, is LPIPS(G_ema(.), G_ema(.)) / eps^2. Lengths outside the [1st, 99th] percentiles are dropped
(percentiles taken "lower"/"higher" as the reference) and the rest averaged.

StyleALAE: w goes to every style input (no truncation, as the reference) and both ends of a
step get the same noise images (the reference holds noise constant; fresh noise at each end
would dominate a 1e-4 step).

Images stay float (no uint8 rounding: a 1e-4 step changes pixels by far less than 1/255) and
unclipped, as in the reference. LPIPS sees them upsampled (bilinear) to 64x64: the StyleGAN code
feeds VGG 256x256 face crops, but MNIST's 28x28 / 32x32 digits are too small for VGG16 (after
four 2x2 poolings relu5_3 would be 1x1 or 2x2), and 64x64 is the patch size on which LPIPS'
linear heads were calibrated (BAPPS); 128x128 would cost four times the compute for no gain in
fidelity (the extra pixels are interpolated).

Default: 10,000 paths per sampling mode (the paper: 100k, ALAE's code: 50k); `--num-samples`
overrides it. Cost: ~23 CPU-seconds per 1k paths (MNIST MLP; almost all of it VGG16), i.e. about
3 minutes per mode on an otherwise idle 2-core CPU. Both modes use the same latents.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from alae_tf.metrics.lpips import LPIPS
from alae_tf.progress import progress_bar

EPSILON = 1e-4
DEFAULT_SAMPLES = 10_000
LPIPS_SIDE = 64
MAX_PAIRS_PER_BATCH = 32  # VGG16 at 64x64: 2 x 32 images keep relu1_2 at ~70 MB
LATENT_STREAM = 20  # EvalContext.latents stream of the z pairs (other metrics use their own)
SAMPLINGS = ("full", "end")


def interpolation_t(count: int, sampling: str, seed: int) -> np.ndarray:
    """Where on each path the step is taken: U(0, 1) for "full", 0 for "end"."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if sampling == "end":
        return np.zeros(count, dtype=np.float32)
    return tf.random.stateless_uniform([count], seed=[seed, LATENT_STREAM]).numpy()


def path_lengths(generate_fn, w0, w1, t, eps, distance_fn) -> np.ndarray:
    """distance_fn(G(lerp(w0, w1, t)), G(lerp(w0, w1, t + eps))) / eps^2, one value per path.

    generate_fn maps a [B, latent] batch to images; distance_fn maps two image batches to [B].
    """
    w0, w1 = np.asarray(w0), np.asarray(w1)
    t = np.asarray(t, dtype=w0.dtype)[:, np.newaxis]
    start = w0 + t * (w1 - w0)
    end = w0 + (t + eps) * (w1 - w0)
    return np.asarray(distance_fn(generate_fn(start), generate_fn(end)), dtype=np.float64) / eps**2


def filtered_mean(lengths) -> float:
    """Mean of the lengths within the [1st, 99th] percentiles (the reference's outlier rejection)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    low = np.percentile(lengths, 1, method="lower")
    high = np.percentile(lengths, 99, method="higher")
    return float(np.mean(lengths[(lengths >= low) & (lengths <= high)]))


@functools.lru_cache(maxsize=1)
def _lpips() -> LPIPS:
    return LPIPS()


def lpips_on_upsampled(images_a, images_b):
    """LPIPS of float NHWC images in [-1, 1] after bilinear resizing to 64x64."""
    resize = lambda images: tf.image.resize(images, [LPIPS_SIDE, LPIPS_SIDE], method="bilinear")  # noqa: E731
    return _lpips()(resize(images_a), resize(images_b))


def perceptual_path_length(ctx, sampling: str) -> float:
    """PPL in W of ctx.sampler's networks over ctx.sample_count(10,000) paths."""
    count = ctx.sample_count(DEFAULT_SAMPLES)
    z = ctx.latents(2 * count, LATENT_STREAM)
    t = interpolation_t(count, sampling, ctx.seed)
    pairs = max(1, min(ctx.batch_size // 2, MAX_PAIRS_PER_BATCH))
    print(f"perceptual path length ({sampling})")
    progress = progress_bar(count, unit_name="path")
    lengths = []
    for start in range(0, count, pairs):
        stop = min(start + pairs, count)
        w0 = np.asarray(ctx.sampler.map(z[start:stop]))
        w1 = np.asarray(ctx.sampler.map(z[count + start : count + stop]))
        noise = ctx.sampler.noise(stop - start, ctx.seed * 1_000_003 + start)  # the same at both ends of a step
        generate = functools.partial(ctx.sampler.decode, noise=noise)
        lengths.append(path_lengths(generate, w0, w1, t[start:stop], EPSILON, lpips_on_upsampled))
        progress.add(stop - start)
    return filtered_mean(np.concatenate(lengths))


def ppl_full(ctx) -> dict:
    return {"ppl_full": perceptual_path_length(ctx, "full")}


def ppl_end(ctx) -> dict:
    return {"ppl_end": perceptual_path_length(ctx, "end")}
