"""Evaluation metrics against numbers computed by another route (plain numpy loops, scikit-learn
called directly, closed forms): each test pins one number a metric ships, where a one-line slip
(a mutation-testing audit found these survived) would change it without breaking a code path."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from alae_tf.metrics import probe
from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.feature_stats import kernel_inception_distance
from alae_tf.metrics.mnist_metrics import flat_unit
from alae_tf.metrics.ppl import LPIPS_SIDE, lpips_input, path_lengths


def brute_force_1nn_accuracy(train_x, train_y, test_x, test_y):
    distances = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(axis=2)
    return float(np.mean(train_y[distances.argmin(axis=1)] == test_y))


# --- probe: the reference's 50k/10k split


def test_split50k_probes_are_scored_on_the_rows_they_were_not_fit_on(monkeypatch):
    """probe_split50k_*: fit on the rows whose stored index is below the split, scored on the others.
    Scored on their own training rows instead, 1-NN would ship 1.0 (each code its own neighbour)
    for classes that overlap: here the held-out 1-NN accuracy is well below that (asserted)."""
    split, n_train, n_test = 150, 200, 50
    monkeypatch.setattr(probe, "REFERENCE_SPLIT", split)  # data of another size than MNIST's 60k: stored order
    rng = np.random.default_rng(4)
    train_labels, test_labels = rng.integers(0, 2, n_train), rng.integers(0, 2, n_test)
    arrays = {(n, f): rng.normal(size=(n, 4 if f else 3)) + 0.8 * labels[:, None]  # overlapping classes
              for n, labels in ((n_train, train_labels), (n_test, test_labels)) for f in (False, True)}
    order = rng.permutation(n_train)  # evaluate's rows are a shuffle; train_order maps each to its stored index
    data = SimpleNamespace(train_images=np.zeros(n_train), test_images=np.zeros(n_test),
                           train_labels=train_labels, test_labels=test_labels, train_order=order)
    ctx = SimpleNamespace(data=data, encoded=lambda images, label="", features=False: arrays[(len(images), features)])
    results = probe.probe_metrics(ctx)

    fit_rows = np.array([order[row] < split for row in range(n_train)])  # row by row, not reference_split
    held_out = np.array([row for row in range(n_train) if not fit_rows[row]])
    assert len(held_out) == n_train - split
    for prefix, features in (("probe_split50k", False), ("probe_split50k_features", True)):
        train = arrays[(n_train, features)]
        expected = brute_force_1nn_accuracy(train[fit_rows], train_labels[fit_rows], train[held_out],
                                            train_labels[held_out])
        assert expected < 0.9  # distinguishable from the 1.0 of scoring the fit rows themselves
        assert results[f"{prefix}_1nn_accuracy"] == expected
        svm = LinearSVC(C=0.02, dual=False, max_iter=5000).fit(train[fit_rows], train_labels[fit_rows])
        assert results[f"{prefix}_svm_c002_accuracy"] == np.mean(svm.predict(train[held_out]) == train_labels[held_out])


# --- KID


def test_kid_of_one_full_subset_is_the_unbiased_mmd2_with_the_cubic_kernel():
    """KID = unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018), summed pair by
    pair here. A biased estimate (dividing the within-set sums by m^2) or a kernel without the + 1
    would ship another number. One subset of all n vectors: which subset is drawn does not matter
    (MMD^2 does not depend on the order of the rows), and its std is 0."""
    rng = np.random.default_rng(5)
    n, d = 20, 5
    a, b = rng.normal(size=(n, d)), rng.normal(0.3, 1.2, size=(n, d))

    def k(x, y):
        return (sum(x[i] * y[i] for i in range(d)) / d + 1.0) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    between = sum(k(a[i], b[j]) for i in range(n) for j in range(n)) / (n * n)
    expected = within_a + within_b - 2.0 * between
    mean, std = kernel_inception_distance(a, b, num_subsets=1, subset_size=n)
    # float64 sums of 400 terms of size ~10: rounding ~1e-14 relative; expected ~0.1 is far from 0.
    assert mean == pytest.approx(expected, rel=1e-10)
    assert abs(expected) > 1e-2 and std == 0.0


# --- reconstruction MSE


def reconstruction_context(images, reconstruct):
    sampler = SimpleNamespace(noise=lambda batch, seed: [], reconstruct=lambda x, noise=None: reconstruct(x))
    return EvalContext(sampler=sampler, config=None, data=SimpleNamespace(test_images=images), batch_size=7)


def test_reconstruction_mse_is_in_unit_pixels_and_clips_the_reconstruction():
    """reconstruction_mse is the MSE of pixels in [0, 1], G(E(x)) clipped to the image range [-1, 1]
    first (as a saved image would be). A reconstruction off by 0.2 in model units ([-1, 1]) is off
    by 0.1 in [0, 1]: MSE 0.01, not 0.04 (model units). One beyond +-1 (3x) counts only up to
    the edge of the range. Expected values from the uint8 pixels in float64, [0, 1] units directly."""
    rng = np.random.default_rng(6)
    dim = rng.integers(0, 201, (20, 4, 4), dtype=np.uint8)  # x <= 200 / 127.5 - 1 = 0.57: x + 0.2 stays in range
    shifted = probe.reconstruction_metrics(reconstruction_context(dim, lambda x: x + 0.2))["reconstruction_mse"]
    # to_model_range and the shift are float32: ~1e-7 relative error in each pixel's difference
    assert shifted == pytest.approx(0.1**2, rel=1e-5)

    full = rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)
    pixels = full.astype(np.float64) / 255.0
    tripled = np.clip(3.0 * (2.0 * pixels - 1.0), -1.0, 1.0)  # 3x in [-1, 1], cut at the range's edges
    expected = np.mean(np.square((tripled + 1.0) / 2.0 - pixels))
    assert np.mean(np.abs(3.0 * (2.0 * pixels - 1.0)) > 1.0) > 0.3  # most pixels are clipped: the cut matters
    result = probe.reconstruction_metrics(reconstruction_context(full, lambda x: 3.0 * x))["reconstruction_mse"]
    assert result == pytest.approx(expected, rel=1e-5)


# --- PPL


def bilinear_by_hand(images, side):
    """Half-pixel-centre bilinear upsampling (TF2's tf.image.resize): output pixel i samples the
    input at (i + 0.5) * in / out - 0.5, clamped to the edge, weighted between its two neighbours."""
    n, height, width, channels = images.shape
    out = np.zeros((n, side, side, channels))

    def taps(i, size):
        position = min(max((i + 0.5) * size / side - 0.5, 0.0), size - 1.0)
        low = int(np.floor(position))
        high = min(low + 1, size - 1)
        return low, high, position - low

    for i in range(side):
        r0, r1, fr = taps(i, height)
        for j in range(side):
            c0, c1, fc = taps(j, width)
            out[:, i, j] = ((1 - fr) * ((1 - fc) * images[:, r0, c0] + fc * images[:, r0, c1])
                            + fr * ((1 - fc) * images[:, r1, c0] + fc * images[:, r1, c1]))
    return out


def test_small_images_reach_lpips_bilinearly_upsampled_to_64():
    """MNIST's 28x28 digits are upsampled bilinearly to 64x64 for LPIPS (the module's documented
    choice); nearest-neighbour blocks would give PPL other, blockier image differences."""
    images = np.random.default_rng(7).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    result = np.asarray(lpips_input(images))
    assert result.shape == (2, LPIPS_SIDE, LPIPS_SIDE, 1)
    # float32 interpolation of values in [-1, 1]: rounding ~1e-7
    np.testing.assert_allclose(result, bilinear_by_hand(images.astype(np.float64), LPIPS_SIDE), atol=1e-5)
    assert np.asarray(tf.image.resize(images, [64, 64], "nearest") - result).std() > 0.05  # the choice shows


def test_path_length_steps_forward_from_t_by_eps():
    """PPL's step runs from lerp(w0, w1, t) to lerp(w0, w1, t + eps). For G(w) = w^2 (element-wise)
    and the squared Euclidean distance, with a = w0, b = w1 - w0:
    G(a + (t + e) b) - G(a + t b) = e b (2a + (2t + e) b), so length = sum b^2 (2a + (2t + e) b)^2
    exactly. A large eps (0.25) makes a step backwards (t - eps) differ by far more than rounding."""
    rng = np.random.default_rng(8)
    w0, w1 = rng.standard_normal((2, 6, 3))
    t = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9])
    eps = 0.25
    lengths = path_lengths(np.square, w0, w1, t, eps, lambda x, y: np.sum(np.square(x - y), axis=1))
    a, b = w0, w1 - w0
    expected = np.sum(b**2 * (2 * a + (2 * t[:, None] + eps) * b) ** 2, axis=1)
    np.testing.assert_allclose(lengths, expected, rtol=1e-10)  # float64 throughout


# --- the scaled linear SVM probe


def test_scaled_svm_probe_is_standardised_linear_svc_with_c_1():
    """probe_svm_accuracy: LinearSVC(C=1) (primal, max_iter 2000) on codes standardised with the
    training rows' mean and (population) std, as the module documents. Refit here: the
    standardisation written out, LinearSVC called directly,
    on data where C and the scaling change the accuracy (asserted), so C=0.02 would not pass."""
    rng = np.random.default_rng(0)
    n, d = 60, 20
    x = rng.normal(size=(n + 200, d))
    y = (x @ rng.normal(size=d) + 2.0 * rng.normal(size=n + 200) > 0).astype(int) + (x[:, 0] > 1)  # 3 classes
    x = x * np.logspace(-1, 1, d)  # features of unequal scale: standardising them matters
    train_x, train_y, test_x, test_y = x[:n], y[:n], x[n:], y[n:]

    def accuracy(c, scaled=True):
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        fit_x, score_x = ((train_x - mean) / std, (test_x - mean) / std) if scaled else (train_x, test_x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(C=c, dual=False, max_iter=2000).fit(fit_x, train_y)
        return float(np.mean(svm.predict(score_x) == test_y))

    expected = accuracy(1.0)
    assert accuracy(0.02) != expected and accuracy(1.0, scaled=False) != expected  # the data tells them apart
    assert probe.linear_svm_accuracy(train_x, train_y, test_x, test_y) == expected


# --- pixels in [0, 1]


def test_flat_unit_maps_uint8_onto_0_to_1():
    """flat_unit (memorization and kde_nll's pixels): 0 -> 0, 255 -> 1 exactly, k -> k / 255, one
    row per image. /256 would shrink every distance and shift the Parzen sigma grid's meaning."""
    images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    flat = flat_unit(images)
    assert flat.shape == (4, 64) and flat.dtype == np.float32
    assert flat[0, 0] == 0.0 and flat[-1, -1] == 1.0
    np.testing.assert_allclose(flat.ravel(), np.arange(256) / 255.0, rtol=0, atol=1e-7)  # float32: ulp(1) = 6e-8
