"""The model the trainer trains, chosen by `model.kind` (config.MODEL_KINDS): ALAE
(alae_tf.model) or a baseline of the paper's MNIST comparison (alae_tf.baselines)."""

import tensorflow as tf

from alae_tf.baselines import build_baseline
from alae_tf.config import auto_jit, resolve_jit
from alae_tf.model import TrainedModel, build_alae


def build_model(config) -> TrainedModel:
    """Build and compile the model of a resolved Config at its first phase; call inside the strategy
    scope. `train.jit: auto` is decided here, for that strategy, and written back into the config."""
    config.train.jit = resolve_jit(config, **_where_it_runs())
    return build_alae(config) if config.model.kind == "alae" else build_baseline(config)


def auto_jit_here(config) -> bool:
    """What `jit: auto` would choose for `config` in the strategy scope this is called in."""
    return auto_jit(config, **_where_it_runs())


def _where_it_runs() -> dict:
    return {"distributed": tf.distribute.has_strategy(), "gpu": bool(tf.config.list_logical_devices("GPU"))}
