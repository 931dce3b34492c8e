"""A run directory: `config.yaml`, `checkpoints/`, `samples/`, `logs/`, `log.csv`, `eval.json`.

Training writes it; evaluation and export read it back through `load_run`, never from live
training objects. A run's config.yaml carries the run format (`alae_tf.config.RUN_FORMAT`);
runs of an older format are refused with one line naming it.
"""

from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf
import yaml

from alae_tf.config import RUN_FORMAT, Config, load_config_file
from alae_tf.errors import ALAEError, ConfigError
from alae_tf.model import ALAE, build_alae

LAST_FORMAT_1_COMMIT = "c715ea5"  # the last alae_tf that reads run format 1 (before the backbone protocol)


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


def read_run_config(run: RunDir) -> Config:
    """The run's config.yaml, refused with one line if an older alae_tf wrote it."""
    try:
        raw = yaml.safe_load(run.config_file.read_text())
    except (OSError, yaml.YAMLError):
        raw = None  # load_config_file reports it
    if isinstance(raw, dict) and raw.get("format") != RUN_FORMAT:
        raise ConfigError(
            f"{run.root}: written by an older alae_tf (run format {raw.get('format', 1)}, this version reads "
            f"{RUN_FORMAT}); its checkpoints do not load here: retrain, or use alae_tf at commit "
            f"{LAST_FORMAT_1_COMMIT} (git checkout {LAST_FORMAT_1_COMMIT}) to evaluate or export it"
        )
    return load_config_file(run.config_file)


def load_run(path, checkpoint=None) -> tuple[Config, ALAE]:
    """Rebuild a trained model from its run directory (latest checkpoint unless one is named)."""
    run = RunDir(Path(path))
    if not run.config_file.is_file():
        raise ALAEError(f"{run.root}: not a training run (no config.yaml); pass the --out directory of `python -m alae_tf.train`")
    config = read_run_config(run)
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
