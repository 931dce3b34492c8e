"""A run directory: `config.yaml`, `checkpoints/`, `samples/`, `logs/`, `log.csv`, `eval.json`.

Training writes it; evaluation and export read it back through `load_run`, never from live
training objects.
"""

from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from alae_tf.config import Config, load_config_file
from alae_tf.errors import ALAEError
from alae_tf.model import ALAE, build_alae


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config_file(self):
        return self.root / "config.yaml"

    @property
    def checkpoints(self):
        return self.root / "checkpoints"

    @property
    def samples(self):
        return self.root / "samples"

    @property
    def logs(self):
        return self.root / "logs"

    @property
    def log_csv(self):
        return self.root / "log.csv"

    @property
    def eval_file(self):
        return self.root / "eval.json"


def checkpoint_manager(model: ALAE, run: RunDir, max_to_keep=3) -> tf.train.CheckpointManager:
    """Models (live and EMA), both optimizers and the step counter (which fixes the data position)."""
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer_ed=model.optimizer_ed, optimizer_fg=model.optimizer_fg
    )
    return tf.train.CheckpointManager(checkpoint, str(run.checkpoints), max_to_keep=max_to_keep)


def set_precision(mixed_precision: str) -> None:
    policies = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
    keras.mixed_precision.set_global_policy(policies.get(mixed_precision, "float32"))


def load_run(path, checkpoint=None) -> tuple[Config, ALAE]:
    """Rebuild a trained model from its run directory (latest checkpoint unless one is named)."""
    run = RunDir(Path(path))
    if not run.config_file.is_file():
        raise ALAEError(f"{run.root}: not a training run (no config.yaml); pass the --out directory of `python -m alae_tf.train`")
    config = load_config_file(run.config_file)
    set_precision("none")  # evaluation and export run in float32 whatever the training precision
    model = build_alae(config)
    manager = checkpoint_manager(model, run)
    target = checkpoint or manager.latest_checkpoint
    if target is None:
        raise ALAEError(f"{run.checkpoints}: no checkpoint yet; train longer (checkpoints are written every train.checkpoint_every steps)")
    try:
        manager.checkpoint.restore(target).expect_partial()
    except (tf.errors.NotFoundError, ValueError) as exc:
        raise ALAEError(f"{target}: cannot restore checkpoint ({exc})") from None
    return config, model
