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
unclipped, as in the reference. What LPIPS sees, as the ALAE metric code feeds its VGG16:
`crop` "face" keeps rows 3/8..7/8 and columns 2/8..6/8 of the image (its face region of aligned
FFHQ / CelebA-HQ faces), "celeba" its tighter crop for CelebA 128x128, "none" the whole image;
then images above 256 pixels are block-averaged to 256 (1024 -> 512 crop -> 256), as there.
Images below 64 pixels (MNIST's 28x28 / 32x32 digits, too small for VGG16: after four 2x2
poolings relu5_3 would be 1x1 or 2x2) are upsampled (bilinear) to 64x64, the patch size on which
LPIPS' linear heads were calibrated (BAPPS); the reference has no such case. (Before 2026-12-05
every image was resized to 64x64 without a crop: at 256 and 1024 pixels a bilinear resize reads
2 of 4 and 2 of 16 rows, so those figures were not the paper's metric.)

Default: 10,000 paths per sampling mode (the paper: 100k, ALAE's code: 50k); `--num-samples`
overrides it. Cost: ~23 CPU-seconds per 1k paths (MNIST MLP; almost all of it VGG16), i.e. about
3 minutes per mode on an otherwise idle 2-core CPU. Both modes use the same latents.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from alae_tf.metrics import PPL_CROPS as CROPS
from alae_tf.metrics.lpips import LPIPS, weights_path
from alae_tf.progress import progress_bar

EPSILON = 1e-4
DEFAULT_SAMPLES = 10_000
LPIPS_SIDE = 64  # images smaller than this are upsampled to it
MAX_LPIPS_SIDE = 256  # larger ones are block-averaged down to it
MAX_PAIRS_PER_BATCH = 32  # VGG16 at 64x64: 2 x 32 images keep relu1_2 at ~70 MB (fewer for larger inputs)
LATENT_STREAM = 20  # EvalContext.latents stream of the z pairs (other metrics use their own)
SAMPLINGS = ("full", "end")


def require_lpips_weights(ctx) -> None:
    weights_path()


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


def crop_box(height: int, width: int, crop: str) -> tuple[slice, slice]:
    """(rows, columns) of the region PPL compares: the ALAE metric code's face crops, or all."""
    if crop == "face":
        c = height // 8
        return slice(3 * c, 7 * c), slice(2 * c, 6 * c)
    if crop == "celeba":  # the reference's celeba_style crop, its arithmetic as written there
        h, w = int((7 - 3) / 8 * (2 / 1.6410) * height), int((6 - 2) / 8 * (2 / 1.6410) * height)
        vc, hc = int((7 + 3) / 2 / 8 * height), int((6 + 2) / 2 / 8 * height)
        return slice(vc - h // 2, vc + h // 2), slice(hc - w // 2, hc + w // 2)
    if crop == "none":
        return slice(0, height), slice(0, width)
    raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")


def lpips_input(images, crop: str = "none"):
    """Float NHWC images in [-1, 1] as LPIPS sees them for PPL: cropped, then block-averaged down
    to 256 pixels, or upsampled (bilinear) to 64 (see the module's docstring)."""
    images = tf.convert_to_tensor(images, tf.float32)
    rows, columns = crop_box(images.shape[1], images.shape[2], crop)
    images = images[:, rows, columns]
    side = images.shape[1]
    if side > MAX_LPIPS_SIDE:
        factor = side // MAX_LPIPS_SIDE
        return tf.nn.avg_pool2d(images, factor, factor, "VALID")
    if side < LPIPS_SIDE:
        return tf.image.resize(images, [LPIPS_SIDE, LPIPS_SIDE], method="bilinear")
    return images


def ppl_distance(crop: str):
    """distance_fn of `path_lengths`: LPIPS of the two batches' `lpips_input`."""
    return lambda images_a, images_b: _lpips()(lpips_input(images_a, crop), lpips_input(images_b, crop))


def perceptual_path_length(ctx, sampling: str) -> float:
    """PPL in W of ctx.sampler's networks over ctx.sample_count(10,000) paths."""
    count = ctx.sample_count(DEFAULT_SAMPLES)
    z = ctx.latents(2 * count, LATENT_STREAM)
    t = interpolation_t(count, sampling, ctx.seed)
    side = lpips_input(np.zeros((1, *ctx.sampler.image_shape), np.float32), ctx.ppl_crop).shape[1]
    pairs = max(1, min(ctx.batch_size // 2, MAX_PAIRS_PER_BATCH * LPIPS_SIDE**2 // side**2))
    print(f"perceptual path length ({sampling}; LPIPS on {side}x{side}{'' if ctx.ppl_crop == 'none' else f', {ctx.ppl_crop} crop'})")
    progress = progress_bar(count, unit_name="path")
    lengths = []
    for start in range(0, count, pairs):
        stop = min(start + pairs, count)
        w0 = np.asarray(ctx.sampler.map(z[start:stop]))
        w1 = np.asarray(ctx.sampler.map(z[count + start : count + stop]))
        noise = ctx.sampler.noise(stop - start, ctx.seed * 1_000_003 + start)  # the same at both ends of a step
        generate = functools.partial(ctx.sampler.decode, noise=noise)
        lengths.append(path_lengths(generate, w0, w1, t[start:stop], EPSILON, ppl_distance(ctx.ppl_crop)))
        progress.add(stop - start)
    return filtered_mean(np.concatenate(lengths))


def ppl_full(ctx) -> dict:
    return {"ppl_full": perceptual_path_length(ctx, "full")}


def ppl_end(ctx) -> dict:
    return {"ppl_end": perceptual_path_length(ctx, "end")}
