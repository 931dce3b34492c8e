"""A run directory's layout (what `python -m alae_tf.train --out` holds) and the check that a path
holds a run. Imports nothing heavy: the commands check --run before TensorFlow loads."""

from dataclasses import dataclass
from pathlib import Path

from alae_tf.errors import ALAEError


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
    def checkpoint_state(self):
        """tf.train.CheckpointManager's record of the checkpoints kept and the latest."""
        return self.checkpoints / "checkpoint"

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

    @property
    def lock_file(self):
        return self.root / "train.lock"

    @property
    def data_file(self):
        """The image folder's fingerprint when the run started (`ImageSource.contents`)."""
        return self.root / "data_contents.txt"

    # What the editing commands write into a run by default.
    @property
    def directions_file(self):
        return self.root / "directions.json"

    @property
    def edits(self):
        return self.root / "edits"

    @property
    def projections(self):
        return self.root / "projections"

    def foreign_entries(self) -> list[str]:
        """Names in the directory that training does not write (a folder given as --out by mistake)."""
        own = {p.name for p in (self.config_file, self.checkpoints, self.samples, self.logs, self.log_csv,
                                self.eval_file, self.lock_file, self.data_file)}
        return sorted(p.name for p in self.root.iterdir() if p.name not in own) if self.root.is_dir() else []


def run_problem(path) -> str | None:
    """Why `path` holds no training run (one line), or None."""
    root = Path(path)
    if not root.is_dir():
        what = "a file, not a run directory" if root.exists() else "no such directory"
        return f"{root}: {what}; pass the --out directory of `python -m alae_tf.train`"
    if not RunDir(root).config_file.is_file():
        return f"{root}: not a training run (no config.yaml); pass the --out directory of `python -m alae_tf.train`"
    return None


def existing_run(path) -> RunDir:
    """The training run at `path`, refused with one line if there is none."""
    if problem := run_problem(path):
        raise ALAEError(problem)
    return RunDir(Path(path))
