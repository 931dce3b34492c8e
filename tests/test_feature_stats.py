"""FID, KID, precision/recall and Inception Score on synthetic feature sets with known answers."""

import numpy as np
import pytest

from alae_tf.metrics.feature_stats import (
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    precision_recall,
)


def gaussian(count, dim=8, mean=0.0, std=1.0, seed=0):
    return np.random.default_rng(seed).normal(mean, std, (count, dim))


# --- FID


def test_fid_of_a_set_with_itself_is_zero():
    features = gaussian(500)
    assert abs(frechet_distance(features, features)) < 1e-8


def test_fid_grows_with_shift_and_with_noise():
    features = gaussian(2000)
    noise = gaussian(2000, seed=1)
    shifted = [frechet_distance(features, features + shift) for shift in (0.1, 0.3, 1.0, 3.0)]
    noised = [frechet_distance(features, features + scale * noise) for scale in (0.1, 0.3, 1.0, 3.0)]
    assert np.all(np.diff(shifted) > 0) and shifted[0] > 0
    assert np.all(np.diff(noised) > 0) and noised[0] > 0


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    """For diagonal covariances: ||mu_a - mu_b||^2 + sum_i (s_a,i - s_b,i)^2."""
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((std_a - std_b) ** 2)
    exact = frechet_distance_from_stats(mu_a, np.diag(std_a**2), mu_b, np.diag(std_b**2))
    assert exact == pytest.approx(expected, rel=1e-9)
    rng = np.random.default_rng(0)
    sampled = frechet_distance(rng.normal(mu_a, std_a, (50_000, 3)), rng.normal(mu_b, std_b, (50_000, 3)))
    assert sampled == pytest.approx(expected, rel=0.03)


# --- KID


def test_kid_is_near_zero_for_one_distribution_and_orders_shifts():
    real = gaussian(2000, dim=16)
    same, same_std = kernel_inception_distance(real, gaussian(2000, dim=16, seed=1), num_subsets=20, subset_size=250)
    shifted = [kernel_inception_distance(real, gaussian(2000, dim=16, mean=shift, seed=1),
                                         num_subsets=20, subset_size=250)[0] for shift in (0.25, 0.5, 1.0)]
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted[0] > 10 * max(abs(same), same_std)
    assert np.all(np.diff(shifted) > 0)


def test_kid_is_a_function_of_the_seed():
    a, b = gaussian(300), gaussian(300, mean=0.2, seed=1)
    first = kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=3)
    assert kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=3) == first
    assert kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=4) != first


def test_kid_subsets_shrink_to_the_smaller_set():
    mean, _ = kernel_inception_distance(gaussian(50), gaussian(80, seed=1), num_subsets=5, subset_size=1000)
    assert np.isfinite(mean)


# --- precision / recall


def uniform_square(count, low, high, seed):
    return np.random.default_rng(seed).uniform(low, high, (count, 2))


def test_identical_sets_have_full_precision_and_recall():
    features = gaussian(500)
    assert precision_recall(features, features) == {"precision": 1.0, "recall": 1.0}


def test_fake_in_a_corner_of_real_is_precise_but_not_diverse():
    real = uniform_square(2000, 0.0, 1.0, seed=0)
    fake = uniform_square(2000, 0.0, 0.3, seed=1)
    result = precision_recall(real, fake)
    assert result["precision"] > 0.95
    assert result["recall"] < 0.2


def test_fake_spread_beyond_real_is_diverse_but_not_precise():
    real = uniform_square(2000, 0.0, 0.3, seed=0)
    fake = uniform_square(2000, 0.0, 1.0, seed=1)
    result = precision_recall(real, fake)
    assert result["precision"] < 0.2
    assert result["recall"] > 0.95


def test_precision_recall_on_points_on_a_line_by_hand():
    """Five real and five fake points on a line, radii worked out by hand: real 0, 1, 3, 6, 10 have
    their nearest other point (k=1) at 1, 1, 2, 3, 4 and their second (k=2) at 3, 2, 3, 4, 7; of the
    fakes -2.5, 4.5, 8, 15, 20, 4.5 and 8 lie inside the real balls for k=1 (precision 0.4), and
    -2.5 and 15 too for k=2 (0.8). The fakes' own radii are at least 3.5 (k=1), which every real
    point is within of some fake: recall 1. (Nothing pinned k before: the k-th radius taken as the
    (k+3)-th passed every other test here.)"""
    real = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]], np.float32)
    fake = np.array([[-2.5], [4.5], [8.0], [15.0], [20.0]], np.float32)
    assert precision_recall(real, fake, k=1) == {"precision": 0.4, "recall": 1.0}
    assert precision_recall(real, fake, k=2) == {"precision": 0.8, "recall": 1.0}
    assert precision_recall(fake, real, k=1) == {"precision": 1.0, "recall": 0.4}  # the roles swap


def test_precision_recall_does_not_depend_on_the_batch_size():
    real, fake = gaussian(300), gaussian(300, mean=0.3, seed=1)
    assert precision_recall(real, fake, batch_size=7) == precision_recall(real, fake, batch_size=1000)


def test_fid_matches_the_reference_matrix_square_root():
    """The eigendecomposition route gives the reference formula's Tr(sqrtm(S_a S_b)) on full covariances."""
    import scipy.linalg

    a, b = gaussian(400, dim=6), gaussian(400, dim=6, seed=1) @ np.random.default_rng(2).normal(size=(6, 6))
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(sigma_a @ sigma_b))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a + sigma_b - 2.0 * covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fid_of_sets_smaller_than_the_dimension_equals_the_covariance_route():
    a, b = gaussian(20, dim=50), gaussian(30, dim=50, mean=0.3, std=2.0, seed=1)
    mu_a, sigma_a = np.mean(a, 0), np.cov(a, rowvar=False)
    mu_b, sigma_b = np.mean(b, 0), np.cov(b, rowvar=False)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b), rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-9


def test_kid_from_no_more_images_than_a_subset_says_its_std_means_nothing(monkeypatch, capsys):
    from types import SimpleNamespace

    from alae_tf.metrics import generation

    rng = np.random.default_rng(0)
    for count, warned in ((60, True), (1001, False)):
        features = rng.normal(size=(count, 8)), rng.normal(size=(count, 8))
        monkeypatch.setattr(generation, "_real_and_generated", lambda ctx, n, features=features: features)
        result = generation.kid(SimpleNamespace(sample_count=lambda default: count, seed=0))
        assert ("kid_std says nothing" in capsys.readouterr().out) == warned
        assert (result["kid_std"] < 1e-12) == warned  # the same subset every time
