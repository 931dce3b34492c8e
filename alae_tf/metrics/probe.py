"""The paper's MNIST representation metric and reconstruction error.

Probes are fit on the codes E(x) of training images and scored on held-out ones. E is the
sampler's encoder (the EMA copy where the run keeps one), as for reconstructions. Metric names:

- `probe_1nn_accuracy`: 1-nearest-neighbour (Euclidean) accuracy, official 60k/10k split
  (the reference's 1-NN too);
- `probe_svm_accuracy`: our linear SVM on standardised codes (C = 1), 60k/10k;
- `probe_svm_c002_accuracy`: the reference's linear SVM (official ALAE `mnist_ref`:
  LinearSVC(C=0.02, max_iter=5000) on unscaled codes), 60k/10k;
- `probe_split50k_1nn_accuracy`, `probe_split50k_svm_c002_accuracy`: the same two on the
  reference's split of MNIST's 60k training images (its prepare_mnist_tfrecords.py: Python's
  random.seed(0), random.shuffle of the images in the IDX file's order, then [:50000] against
  [50000:]); a model trained on all 60k has seen those 10k, the reference trained on the 50k.
  (Before 2026-12-05 the first 50k of evaluate's own shuffled order: another partition, ~0.5
  points of 1-NN apart on a 300-step run, an audit measured.) Data of another size: the first
  50k of its stored order against the rest;
- `probe_features_*`, `probe_split50k_features_*`: the same 1-NN and reference SVM on E's
  representation before its last linear map (`Sampler.features`: the MLP's 1024-d last hidden
  layer, the reference's penultimate features; StyleALAE's per-block terms of w) instead of the codes.
"""

import random
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from alae_tf.errors import DataError
from alae_tf.metrics.context import require_held_out


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y):
    classifier = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(train_x, train_y)
    return float(np.mean(classifier.predict(test_x) == test_y))


def linear_svm_accuracy(train_x, train_y, test_x, test_y, seed=0):
    classifier = make_pipeline(StandardScaler(), LinearSVC(dual=False, max_iter=2000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train_x, train_y)
    return float(np.mean(classifier.predict(test_x) == test_y))


REFERENCE_SVM_C = 0.02
REFERENCE_SPLIT = 50000  # the reference's last MNIST commit: training images [:50000] vs [50000:] ...
MNIST_TRAIN = 60000  # ... of MNIST's training images shuffled by Python's random after random.seed(0)
REFERENCE_SHUFFLE_SEED = 0


def reference_split(train_order) -> np.ndarray:
    """Which rows fall in the reference's 50k training part: `train_order` gives each row's index
    among the training images in their stored order (MNIST: the IDX file's). MNIST's 60k are
    shuffled as the reference's prepare_mnist_tfrecords.py shuffles them (a permutation of the
    list's positions only, whatever it holds); other sizes split in their stored order."""
    train_order = np.asarray(train_order)
    if len(train_order) != MNIST_TRAIN:
        return train_order < REFERENCE_SPLIT
    positions = list(range(MNIST_TRAIN))
    random.Random(REFERENCE_SHUFFLE_SEED).shuffle(positions)
    in_training_part = np.zeros(MNIST_TRAIN, bool)
    in_training_part[positions[:REFERENCE_SPLIT]] = True
    return in_training_part[train_order]


def reference_svm_accuracy(train_x, train_y, test_x, test_y):
    """The official code's probe: LinearSVC(C=0.02, max_iter=5000) on unscaled features (solved in
    the primal here: the same optimum as the reference's dual solver; an audit measured the dual
    faster on 60k 50-d codes, 4.4 s against 19.3 s, at equal accuracy)."""
    classifier = LinearSVC(C=REFERENCE_SVM_C, dual=False, max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train_x, train_y)
    return float(np.mean(classifier.predict(test_x) == test_y))


def require_class_labels(ctx) -> None:
    if ctx.data.train_labels is None or ctx.data.test_labels is None:
        raise DataError("probe needs class labels (MNIST-family data); this run's data has none")


def probe_code_metrics(ctx):
    """The probe on the 50-d codes, official 60k/10k split only: the same `probe_1nn_accuracy`,
    `probe_svm_accuracy` and `probe_svm_c002_accuracy` as `probe_metrics` in seconds rather than
    minutes (the SVM on the 1024-d features is most of those)."""
    require_class_labels(ctx)
    data = ctx.data
    split = (ctx.encoded(data.train_images, label="encoding the training split"), data.train_labels,
             ctx.encoded(data.test_images, label="encoding the test split"), data.test_labels)
    return fitted([("probe_1nn_accuracy", "1-NN, codes", nearest_neighbour_accuracy, split),
                   ("probe_svm_accuracy", "scaled linear SVM, codes", linear_svm_accuracy, split),
                   ("probe_svm_c002_accuracy", "linear SVM C=0.02, codes", reference_svm_accuracy, split)],
                  "official split")


def probe_metrics(ctx):
    require_class_labels(ctx)
    data = ctx.data
    codes = (ctx.encoded(data.train_images, label="encoding the training split"),
             ctx.encoded(data.test_images, label="encoding the test split"))
    features = (ctx.encoded(data.train_images, label="E's features of the training split", features=True),
                ctx.encoded(data.test_images, label="E's features of the test split", features=True))
    fits = [("probe_svm_accuracy", "scaled linear SVM, codes", linear_svm_accuracy,
             (codes[0], data.train_labels, codes[1], data.test_labels))]
    for prefix, what, (train, test) in (("probe", "codes", codes), ("probe_features", "features", features)):
        splits = [(prefix, "official split", (train, data.train_labels, test, data.test_labels))]
        if len(train) > REFERENCE_SPLIT:
            order = data.train_order if data.train_order is not None else np.arange(len(train))
            first = reference_split(order)
            rest = ~first
            splits.append((prefix.replace("probe", "probe_split50k"), "50k/10k split",
                           (train[first], data.train_labels[first], train[rest], data.train_labels[rest])))
        for name, split_name, split in splits:
            fits.append((f"{name}_1nn_accuracy", f"1-NN, {what}, {split_name}", nearest_neighbour_accuracy, split))
            fits.append((f"{name}_svm_c002_accuracy", f"linear SVM C=0.02, {what}, {split_name}", reference_svm_accuracy, split))
    return fitted(fits, "the official split and the reference's 50k/10k split")


def fitted(fits, splits: str) -> dict:
    """{key: fit(*split)} of (key, description, fit, split) tuples, a line per fit: they take seconds to
    a minute each (the SVMs on the 1024-d features), and a Ctrl-C is only seen between them
    (scikit-learn's solvers do not return to Python before)."""
    print(f"fitting {len(fits)} probes (1-NN, linear SVMs; {splits})")
    results = {}
    for number, (key, description, fit, split) in enumerate(fits, 1):
        started = time.monotonic()
        results[key] = fit(*split)
        print(f"  {number}/{len(fits)} {description}: {results[key]:.4f} ({time.monotonic() - started:.0f} s)", flush=True)
    return results


def require_reconstruction_held_out(ctx) -> None:
    require_held_out(ctx, "reconstruction")


def reconstruction_metrics(ctx):
    """Mean squared error of G(E(x)) on the test split, pixels in [0, 1]."""
    require_reconstruction_held_out(ctx)
    total, count = 0.0, 0
    for batch, reconstructed in ctx.reconstruction_batches(ctx.data.test_images):
        reconstructed = np.clip(np.asarray(reconstructed), -1.0, 1.0)
        total += float(np.sum(np.square((reconstructed - np.asarray(batch)) / 2.0)))
        count += int(np.prod(batch.shape))
    return {"reconstruction_mse": total / count}
