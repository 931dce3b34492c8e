"""The model the trainer trains, chosen by `model.kind` (config.MODEL_KINDS): ALAE
(alae_tf.model) or a baseline of the paper's MNIST comparison (alae_tf.baselines)."""

import tensorflow as tf

from alae_tf.baselines import build_baseline
from alae_tf.config import resolve_jit
from alae_tf.model import TrainedModel, build_alae


def build_model(config) -> TrainedModel:
    """Build and compile the model of a resolved Config at its first phase; call inside the strategy
    scope. `train.jit: auto` is decided here, for that strategy, and written back into the config."""
    config.train.jit = resolve_jit(config, distributed=tf.distribute.has_strategy(),
                                   gpu=bool(tf.config.list_logical_devices("GPU")))
    return build_alae(config) if config.model.kind == "alae" else build_baseline(config)
