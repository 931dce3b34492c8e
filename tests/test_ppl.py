"""Perceptual path length: the path-length core against closed forms, outlier filter, sampling, determinism."""

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.ppl import EPSILON, crop_box, filtered_mean, interpolation_t, lpips_input, path_lengths, ppl_end, ppl_full


def squared_euclidean(a, b):
    return np.sum(np.square(a - b), axis=1)


@pytest.mark.parametrize("sampling", ["full", "end"])
def test_linear_generator_gives_the_closed_form(sampling):
    # G(w) = A w: the step's squared distance / eps^2 is ||A (w1 - w0)||^2 wherever the step is taken.
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((12, 5))
    w0, w1 = rng.standard_normal((2, 100, 5))
    t = interpolation_t(100, sampling, seed=0).astype(np.float64)
    lengths = path_lengths(lambda w: w @ matrix.T, w0, w1, t, EPSILON, squared_euclidean)
    expected = np.sum(np.square((w1 - w0) @ matrix.T), axis=1)
    np.testing.assert_allclose(lengths, expected, rtol=1e-8)


def test_the_step_is_taken_at_t():
    # G(w) = w^2 (element-wise): length ~ ||2 lerp(w0, w1, t) * (w1 - w0)||^2, up to O(eps).
    rng = np.random.default_rng(1)
    w0, w1 = rng.standard_normal((2, 50, 3))
    t = rng.uniform(size=50)
    lengths = path_lengths(np.square, w0, w1, t, EPSILON, squared_euclidean)
    w_t = w0 + t[:, None] * (w1 - w0)
    expected = np.sum(np.square(2 * w_t * (w1 - w0)), axis=1)
    np.testing.assert_allclose(lengths, expected, rtol=1e-3)


def test_filter_drops_values_outside_the_1st_and_99th_percentiles():
    lengths = np.concatenate([np.arange(1.0, 199.0), [-1e6, 1e9]])  # 200 values, two wild outliers
    # "lower" 1st percentile = 2nd smallest (1.0), "higher" 99th = 2nd largest (198.0).
    assert filtered_mean(lengths) == pytest.approx(np.mean(np.arange(1.0, 199.0)))
    assert filtered_mean(np.full(10, 3.5)) == 3.5


def test_end_sampling_is_t_zero_and_full_is_uniform_and_seeded():
    np.testing.assert_array_equal(interpolation_t(1000, "end", seed=0), 0.0)
    full = interpolation_t(1000, "full", seed=0)
    assert 0.0 <= full.min() and full.max() < 1.0 and abs(full.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(full, interpolation_t(1000, "full", seed=0))
    assert not np.array_equal(full, interpolation_t(1000, "full", seed=1))
    with pytest.raises(ValueError, match="sampling"):
        interpolation_t(3, "middle", seed=0)


MAPPING, SYNTHESIS = (np.random.default_rng(123).standard_normal(shape).astype(np.float32) / 2
                      for shape in [(4, 4), (4, 64)])


def tiny_sampler():
    """A fixed non-linear 4-d latent -> 8x8 image map in place of a Sampler's F and G (no noise)."""
    return SimpleNamespace(
        image_shape=(8, 8, 1),
        map=lambda z: np.tanh(np.asarray(z) @ MAPPING),
        noise=lambda batch, seed: [],
        decode=lambda w, noise=None: np.tanh(np.asarray(w) @ SYNTHESIS).reshape(-1, 8, 8, 1),
    )


def tiny_style_sampler():
    """As tiny_sampler, shaped as a StyleALAE decode: strong per-pixel noise drawn from the noise seed."""
    def decode(w, noise=None):
        return np.tanh(np.asarray(w) @ SYNTHESIS).reshape(-1, 8, 8, 1) + 0.5 * np.asarray(noise[0])

    def noise(batch, seed):
        return [tf.random.stateless_normal([batch, 8, 8, 1], seed=[seed, 4])]

    return SimpleNamespace(image_shape=(8, 8, 1), map=tiny_sampler().map, noise=noise, decode=decode)


def tiny_context(seed, num_samples=8, sampler=None, ppl_crop="none"):
    config = SimpleNamespace(model=SimpleNamespace(kind="alae", latent_dim=4))
    return EvalContext(sampler=sampler or tiny_sampler(), config=config, data=None, num_samples=num_samples, seed=seed,
                       batch_size=8, ppl_crop=ppl_crop)


def test_crops_are_the_alae_metric_codes():
    """metrics/ppl.py of the official code: c = H // 8, rows 3c..7c, columns 2c..6c; its CelebA
    128x128 crop by its own arithmetic, worked by hand here: h = w = int(0.5 * 2 / 1.641 * 128) = 78
    around row int(0.625 * 128) = 80 and column 64."""
    assert crop_box(256, 256, "face") == (slice(96, 224), slice(64, 192))
    assert crop_box(1024, 1024, "face") == (slice(384, 896), slice(256, 768))
    assert crop_box(128, 128, "celeba") == (slice(41, 119), slice(25, 103))
    assert crop_box(28, 28, "none") == (slice(0, 28), slice(0, 28))


def test_lpips_sees_crops_block_averaged_to_256_and_small_images_at_64():
    rng = np.random.default_rng(0)
    large = rng.uniform(-1, 1, (1, 1024, 1024, 3)).astype(np.float32)
    face = large[:, 384:896, 256:768]  # 512x512, averaged over 2x2 blocks as the reference does
    expected = face.reshape(1, 256, 2, 256, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(lpips_input(large, "face"), expected, atol=1e-6)
    middle = rng.uniform(-1, 1, (2, 256, 256, 3)).astype(np.float32)
    np.testing.assert_array_equal(lpips_input(middle, "none"), middle)  # every pixel, as it is
    assert lpips_input(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 64, 64, 1)


def corner_sampler(side=256):
    """A generator whose images change with w in their top-left pixel only (outside a face crop)."""
    def decode(w, noise=None):
        images = np.zeros((len(w), side, side, 3), np.float32)
        images[:, :1, :1] = np.tanh(np.asarray(w)[:, :1, np.newaxis, np.newaxis])
        return images

    return SimpleNamespace(image_shape=(side, side, 3), map=tiny_sampler().map, noise=lambda batch, seed: [], decode=decode)


def test_ppl_sees_every_pixel_of_its_region():
    """Before 2026-12-05 images were resized to 64x64 (bilinear, no antialiasing): at 256 pixels
    that reads 2 of every 4 rows and columns, and this generator's paths measured 0. With the face
    crop its changes lie outside the region compared, as in the reference."""
    whole = ppl_full(tiny_context(seed=0, num_samples=4, sampler=corner_sampler()))["ppl_full"]
    assert whole > 0
    assert ppl_full(tiny_context(seed=0, num_samples=4, sampler=corner_sampler(), ppl_crop="face"))["ppl_full"] == 0


def test_metric_is_deterministic_for_a_seed():
    first = ppl_full(tiny_context(seed=0))["ppl_full"]
    assert first > 0
    assert ppl_full(tiny_context(seed=0))["ppl_full"] == first
    assert ppl_full(tiny_context(seed=1))["ppl_full"] != first
    assert ppl_end(tiny_context(seed=0))["ppl_end"] != first


def test_style_models_keep_the_noise_fixed_along_a_step():
    # Different noise at the two ends would add LPIPS(noise, noise') / eps^2 ~ 1e7 to every length.
    value = ppl_full(tiny_context(seed=0, sampler=tiny_style_sampler()))["ppl_full"]
    assert 0 < value < 1e3
