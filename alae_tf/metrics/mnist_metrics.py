"""Sample-quality metrics for MNIST-scale models: FD-MNIST, memorization, Parzen-window NLL.

All three draw the same generated set (EvalContext stream 0, uint8 as saved images) and treat
pixels as [0, 1] values, images flattened.

- fd_mnist: Frechet distance between generated and training images in the 128-d penultimate
  layer of the shipped MNIST CNN (alae_tf.metrics.mnist_classifier) - FID with a digit network.
- memorization: Euclidean distance of each generated image to its nearest training image,
  compared with the same distance for the test images (which the model never saw). A model that
  copies its training set has generated distances well below the test set's.
- kde_nll: Parzen-window estimate (Breuleux et al. 2011; Goodfellow et al. 2014) of the test
  images' negative log-likelihood under an isotropic Gaussian mixture centred on the generated
  images. Known to be unreliable in high dimension (Theis et al. 2016, "A note on the evaluation
  of generative models"): it needs far more samples than are drawn, favours blurry or memorising
  models, and can rank models opposite to their true likelihood. Kept for comparison with the
  literature only.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from alae_tf.errors import DataError
from alae_tf.metrics.context import require_held_out
from alae_tf.metrics.feature_stats import frechet_distance
from alae_tf.metrics.mnist_classifier import (READABLE_IMAGES, feature_extractor, load_classifier, predict_batched,
                                              reads_image_shape, uint8_pixels)
from alae_tf.progress import progress_bar

DEFAULT_SAMPLES = 10_000
QUERY_BATCH = 500  # queries per distance matrix: 500 x 60k float32 = 120 MB
KDE_VALIDATION = 1000  # first test images: choose sigma; the rest are scored (half each with fewer than 2,000)
KDE_SIGMAS = np.logspace(-1.0, 0.0, 10)  # 0.1 ... 1.0, pixels in [0, 1] (MNIST optimum ~0.2)


def flat_unit(images_uint8) -> np.ndarray:
    """uint8 images -> float32 [N, pixels] in [0, 1]."""
    images = uint8_pixels(images_uint8)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def generated_images(ctx, count: int) -> np.ndarray:
    """The metrics' shared generated set: `count` uint8 images of latent stream 0."""
    return np.concatenate(list(ctx.generated_uint8(count, stream=0)))


# --- FD-MNIST ----------------------------------------------------------------------------


def classifier_features(images_uint8, batch_size: int = 500, classifier=None) -> np.ndarray:
    """[N, 128] penultimate pre-activations of the MNIST CNN (default: the shipped weights)."""
    network = feature_extractor(classifier if classifier is not None else load_classifier())
    return predict_batched(network, images_uint8, batch_size)


def require_digit_images(ctx) -> None:
    """The run's images are ones the MNIST classifier reads (known from its config, before any image is drawn)."""
    height, width, channels = ctx.config.model.image_shape
    if not reads_image_shape((height, width, channels)):
        raise DataError(f"fd_mnist compares images in an MNIST classifier's features, which takes {READABLE_IMAGES}; "
                        f"this run's images are {height}x{width} with {channels} channel(s) "
                        "(fid compares images of any size)")


def fd_mnist(ctx) -> dict:
    """FD-MNIST of ctx.sample_count(10,000) generated images against the whole training split."""
    require_digit_images(ctx)
    classifier = load_classifier()
    generated = generated_images(ctx, ctx.sample_count(DEFAULT_SAMPLES))
    print("MNIST-classifier features of the generated and training images")
    fake = classifier_features(generated, ctx.batch_size, classifier)
    real = classifier_features(ctx.real_uint8("train"), ctx.batch_size, classifier)
    return {"fd_mnist": frechet_distance(fake, real)}


# --- memorization ------------------------------------------------------------------------


def nearest_distances(queries, references, batch_size: int = QUERY_BATCH, label: str | None = None) -> np.ndarray:
    """Euclidean distance of each query row to its nearest reference row (float32 inputs).

    Candidates come from ||q||^2 + ||r||^2 - 2 q.r in float32 (BLAS); the winner's distance is
    then recomputed exactly in float64, so exact copies give 0.
    """
    queries = np.asarray(queries, dtype=np.float32)
    references = np.asarray(references, dtype=np.float32)
    reference_norms = np.sum(np.square(references), axis=1)
    progress = progress_bar(len(queries), unit_name="image") if label else None
    if label:
        print(label)
    distances = []
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        nearest = np.argmin(reference_norms[np.newaxis, :] - 2.0 * batch @ references.T, axis=1)
        difference = batch.astype(np.float64) - references[nearest].astype(np.float64)
        distances.append(np.sqrt(np.sum(np.square(difference), axis=1)))
        if progress:
            progress.add(len(batch))
    return np.concatenate(distances)


def memorization_stats(generated_distances, test_distances) -> dict:
    """Nearest-training-image distances of generated vs test images, summarised."""
    generated_median = float(np.median(generated_distances))
    test_median = float(np.median(test_distances))
    threshold = np.percentile(test_distances, 1)
    return {
        "memorization_generated_nn_median": generated_median,
        "memorization_test_nn_median": test_median,
        "memorization_median_ratio": generated_median / test_median,
        "memorization_close_fraction": float(np.mean(generated_distances < threshold)),
    }


def require_memorization_held_out(ctx) -> None:
    require_held_out(ctx, "memorization")


def memorization(ctx) -> dict:
    """Nearest-training-image distances (pixels in [0, 1]) of ctx.sample_count(10,000) generated
    images and of the whole test split; `close_fraction` counts generated images nearer to the
    training set than 99% of the test images are (about 0.01 for a model that does not copy)."""
    require_memorization_held_out(ctx)
    train = flat_unit(ctx.real_uint8("train"))
    generated = flat_unit(generated_images(ctx, ctx.sample_count(DEFAULT_SAMPLES)))
    generated_distances = nearest_distances(generated, train, label="nearest training image: generated")
    test_distances = nearest_distances(flat_unit(ctx.real_uint8("test")), train, label="nearest training image: test")
    return memorization_stats(generated_distances, test_distances)


# --- Parzen-window log-likelihood ----------------------------------------------------------


def parzen_log_likelihoods(queries, centers, sigmas, batch_size: int = QUERY_BATCH) -> np.ndarray:
    """[len(sigmas), Q]: log (1/C) sum_c N(query; center_c, sigma^2 I) for each sigma.

    Squared distances are computed in float64, a batch of queries at a time (the exponent
    ||x - c||^2 / 2 sigma^2 is large, so float32 rounding would shift the result visibly).
    """
    queries = np.asarray(queries, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)[:, np.newaxis]
    count, dim = centers.shape
    center_norms = np.sum(np.square(centers), axis=1)
    normalizer = np.log(count) + 0.5 * dim * np.log(2.0 * np.pi * np.square(sigmas))
    results = []
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        sq = np.sum(np.square(batch), axis=1)[:, np.newaxis] + center_norms - 2.0 * batch @ centers.T
        sq = np.maximum(sq, 0.0)
        results.append(np.stack([logsumexp(-sq / (2.0 * sigma**2), axis=1) for sigma in sigmas[:, 0]]) - normalizer)
    return np.concatenate(results, axis=1)


def select_sigma(validation, centers, sigmas=KDE_SIGMAS) -> float:
    """The sigma of the grid with the highest mean log-likelihood of the validation images."""
    scores = np.mean(parzen_log_likelihoods(validation, centers, sigmas), axis=1)
    return float(np.asarray(sigmas)[int(np.argmax(scores))])


def require_kde_held_out(ctx) -> None:
    require_held_out(ctx, "kde_nll", at_least=2, why=" (one to choose sigma, one to score)")


def kde_nll(ctx) -> dict:
    """Mean test NLL (nats per image) under a Parzen window on ctx.sample_count(10,000) generated
    images; sigma from a 10-value grid on the first 1,000 test images, scored on the rest (with
    fewer than 2,000 test images, as a folder's held-out 10% often is: half and half).
    Densities on [0, 1]^784 exceed 1, so the NLL is negative (papers report LL = -NLL)."""
    require_kde_held_out(ctx)
    test = flat_unit(ctx.real_uint8("test"))
    split = min(KDE_VALIDATION, len(test) // 2)
    validation, scored = test[:split], test[split:]
    centers = flat_unit(generated_images(ctx, ctx.sample_count(DEFAULT_SAMPLES)))
    if len(centers) < DEFAULT_SAMPLES:
        print(f"kde_nll from {len(centers):,} generated images: a Parzen window's NLL falls as its sample grows "
              f"(papers use {DEFAULT_SAMPLES:,}), so compare it only with figures of the same count")
    print("Parzen window: choosing sigma, then scoring the test images")
    sigma = select_sigma(validation, centers)
    log_likelihood = parzen_log_likelihoods(scored, centers, [sigma])[0]
    results = {"kde_nll": float(-np.mean(log_likelihood))}
    if len(log_likelihood) >= 2:
        results["kde_nll_standard_error"] = float(np.std(log_likelihood, ddof=1) / np.sqrt(len(log_likelihood)))
    else:
        print("kde_nll scored one image: no standard error (a spread needs two)")
    return {**results, "kde_sigma": sigma}
