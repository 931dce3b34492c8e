"""The paper's MNIST representation metric and reconstruction error.

Probes are fit on E(x) of the training split and scored on the test split:
1-nearest-neighbour (Euclidean) accuracy and linear SVM accuracy (features standardised).
E is the sampler's encoder (the EMA copy where the run keeps one), as for reconstructions.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from alae_tf.errors import DataError


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y):
    classifier = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(train_x, train_y)
    return float(np.mean(classifier.predict(test_x) == test_y))


def linear_svm_accuracy(train_x, train_y, test_x, test_y, seed=0):
    classifier = make_pipeline(StandardScaler(), LinearSVC(dual=False, max_iter=2000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train_x, train_y)
    return float(np.mean(classifier.predict(test_x) == test_y))


def probe_metrics(ctx):
    data = ctx.data
    if data.train_labels is None or data.test_labels is None:
        raise DataError("probe needs class labels (MNIST-family data); this run's data has none")
    train_w = ctx.encoded(data.train_images, label="encoding the training split")
    test_w = ctx.encoded(data.test_images, label="encoding the test split")
    print("fitting probes (1-NN, linear SVM)")
    return {
        "probe_1nn_accuracy": nearest_neighbour_accuracy(train_w, data.train_labels, test_w, data.test_labels),
        "probe_svm_accuracy": linear_svm_accuracy(train_w, data.train_labels, test_w, data.test_labels),
    }


def reconstruction_metrics(ctx):
    """Mean squared error of G(E(x)) on the test split, pixels in [0, 1]."""
    total, count = 0.0, 0
    for batch, reconstructed in ctx.reconstruction_batches(ctx.data.test_images):
        reconstructed = np.clip(np.asarray(reconstructed), -1.0, 1.0)
        total += float(np.sum(np.square((reconstructed - np.asarray(batch)) / 2.0)))
        count += int(np.prod(batch.shape))
    return {"reconstruction_mse": total / count}
