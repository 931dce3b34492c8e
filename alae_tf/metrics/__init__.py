"""Metric registry: name -> (function(model, data) -> {metric: value}, one-line description)."""

from alae_tf.metrics.probe import probe_metrics, reconstruction_metrics

METRICS = {
    "probe": (probe_metrics, "1-NN and linear-SVM test accuracy on E(x) (fit on the training split)"),
    "reconstruction": (reconstruction_metrics, "test-set MSE of G_ema(E(x)), pixels in [0, 1]"),
}
