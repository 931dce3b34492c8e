"""Metric registry: name -> Metric(function(EvalContext) -> {name: value}, what it measures, what it needs)."""

from typing import Callable, NamedTuple

from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.probe import probe_metrics, reconstruction_metrics


class Metric(NamedTuple):
    compute: Callable[[EvalContext], dict]
    description: str
    needs: str = ""


METRICS = {
    "probe": Metric(probe_metrics, "1-NN and linear-SVM test accuracy on E(x) (fit on the training split)",
                    "class labels (MNIST family)"),
    "reconstruction": Metric(reconstruction_metrics, "test-set MSE of G_ema(E(x)), pixels in [0, 1]"),
}

__all__ = ["METRICS", "EvalContext", "Metric"]
