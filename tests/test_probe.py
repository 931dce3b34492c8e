import numpy as np

from alae_tf.metrics.probe import linear_svm_accuracy, nearest_neighbour_accuracy


def test_nearest_neighbour_accuracy_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(200, 5)), rng.normal(size=(50, 5))
    train_y, test_y = rng.integers(0, 3, 200), rng.integers(0, 3, 50)
    distances = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(axis=2)
    expected = np.mean(train_y[distances.argmin(axis=1)] == test_y)
    assert nearest_neighbour_accuracy(train_x, train_y, test_x, test_y) == expected
    assert 0.2 < expected < 0.6  # random labels: near chance, not a degenerate 0 or 1


def test_linear_svm_separates_linearly_separable_classes_and_not_xor():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    separable = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    xor = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
    assert linear_svm_accuracy(x[:300], separable[:300], x[300:], separable[300:]) > 0.97
    assert linear_svm_accuracy(x[:300], xor[:300], x[300:], xor[300:]) < 0.7


def test_the_reference_svm_is_unscaled_with_c_0_02():
    """On a feature scaled by 1e-3 the unscaled, strongly regularised reference SVM cannot use it;
    the standardised one can: the two protocols differ as they should."""
    from alae_tf.metrics.probe import reference_svm_accuracy

    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] > 0).astype(int)
    tiny = x * np.array([1e-3, 1.0])
    assert reference_svm_accuracy(x[:400], y[:400], x[400:], y[400:]) > 0.97
    assert reference_svm_accuracy(tiny[:400], y[:400], tiny[400:], y[400:]) < 0.7
    assert linear_svm_accuracy(tiny[:400], y[:400], tiny[400:], y[400:]) > 0.97
