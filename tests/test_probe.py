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


def test_probe_metrics_score_codes_and_features_on_both_splits(monkeypatch, capsys):
    """The metric names say which representation, split and SVM each number is (a fake context:
    codes and features are fixed arrays; the 50k split appears only with more than 50k images)."""
    from types import SimpleNamespace

    from alae_tf.metrics import probe

    monkeypatch.setattr(probe, "REFERENCE_SPLIT", 150)
    rng = np.random.default_rng(3)
    train_labels, test_labels = rng.integers(0, 2, 200), rng.integers(0, 2, 50)
    arrays = {(n, f): rng.normal(size=(n, 4 if f else 3)) + np.where(labels[:, None] > 0, 1.5, -1.5)
              for n, labels in ((200, train_labels), (50, test_labels)) for f in (False, True)}
    data = SimpleNamespace(train_images=np.zeros(200), test_images=np.zeros(50),
                           train_labels=train_labels, test_labels=test_labels, train_order=None)  # in stored order
    ctx = SimpleNamespace(data=data, encoded=lambda images, label="", features=False: arrays[(len(images), features)])
    results = probe.probe_metrics(ctx)
    # One line per fit, with its result (minutes passed with "fitting probes" alone on MNIST).
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fitting 9 probes") and len(lines) == 10
    assert lines[1].startswith(f"  1/9 scaled linear SVM, codes: {results['probe_svm_accuracy']:.4f} (")
    assert lines[9].startswith("  9/9 linear SVM C=0.02, features, 50k/10k split: "
                               f"{results['probe_split50k_features_svm_c002_accuracy']:.4f} (")
    codes, features = (arrays[(200, False)], arrays[(50, False)]), (arrays[(200, True)], arrays[(50, True)])
    assert results["probe_1nn_accuracy"] == nearest_neighbour_accuracy(codes[0], train_labels, codes[1], test_labels)
    assert results["probe_features_svm_c002_accuracy"] == probe.reference_svm_accuracy(
        features[0], train_labels, features[1], test_labels)
    assert results["probe_split50k_features_1nn_accuracy"] == nearest_neighbour_accuracy(
        features[0][:150], train_labels[:150], features[0][150:], train_labels[150:])
    assert set(results) == {"probe_svm_accuracy"} | {
        f"{prefix}_{probe_name}_accuracy" for prefix in ("probe", "probe_features", "probe_split50k",
                                                          "probe_split50k_features")
        for probe_name in ("1nn", "svm_c002")}
    assert all(0.8 < value <= 1.0 for value in results.values())  # separable classes: every probe finds them
    # probe_codes: the codes' three numbers of the official split, the same values, nothing else
    assert probe.probe_code_metrics(ctx) == {name: results[name] for name in
                                             ("probe_1nn_accuracy", "probe_svm_accuracy", "probe_svm_c002_accuracy")}
    lines = capsys.readouterr().out.splitlines()  # ~20 s without a line on MNIST (an audit)
    assert lines[0] == "fitting 3 probes (1-NN, linear SVMs; official split)" and len(lines) == 4
    assert lines[3].startswith(f"  3/3 linear SVM C=0.02, codes: {results['probe_svm_c002_accuracy']:.4f} (")


def test_the_50k_split_is_the_references_partition_of_mnist():
    """The reference's prepare_mnist_tfrecords.py, replayed literally on stand-in items: random.seed(0),
    random.shuffle of dlutils' Mnist items ((label, image) in the IDX file's order), [:50000] for
    training. Evaluate reads the rows in its own shuffled order, which train_order maps back."""
    import random

    from alae_tf.data import ImageSource
    from alae_tf.metrics import probe

    state = random.getstate()
    try:
        items = [(None, index) for index in range(60000)]
        random.seed(0)
        random.shuffle(items)
    finally:
        random.setstate(state)
    reference_training = {index for _, index in items[:50000]}
    numbered = (np.arange(60000) % 251).astype(np.uint8).repeat(16).reshape(60000, 4, 4)
    source = ImageSource.from_arrays(numbered)
    order = source.train_order()
    np.testing.assert_array_equal(source.train_images(4)[:, 0, 0, 0], numbered[order, 0, 0])  # rows -> stored index
    assert not np.array_equal(order, np.arange(60000))  # evaluate's order is a shuffle
    in_training = probe.reference_split(order)
    assert in_training.sum() == 50000 and set(order[in_training].tolist()) == reference_training
