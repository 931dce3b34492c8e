"""A run directory: `config.yaml`, `checkpoints/`, `samples/`, `logs/`, `log.csv`, `eval.json`,
`train.lock` (`alae_tf.run_lock`).

Training writes it; evaluation and export read it back through `load_run`, never from live
training objects. A run's config.yaml carries the run format (`alae_tf.config.RUN_FORMAT`);
runs of an older format are refused with one line naming it.

Checkpoints are found by their files (`ckpt-N.index`), not through TensorFlow's `checkpoint`
state file, and a damaged or diverged one is passed over for the newest intact one
(`newest_intact_checkpoint`); leftovers of a killed save (`ckpt-N_temp/`) are never candidates.
"""

import gc
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from alae_tf.atomic_file import write_text_atomically
from alae_tf.compute import set_precision
from alae_tf.config import BACKBONES, RUN_FORMAT, Config, read_yaml_file
from alae_tf.errors import ALAEError, ConfigError, first_line
from alae_tf.model import TrainedModel
from alae_tf.model_kinds import build_model
from alae_tf.run_layout import RunDir, existing_run
from alae_tf.schedule import phase_at, phases

CHECKPOINT_PREFIX = "ckpt"
PASSED_OVER = "passed_over"  # RUN/checkpoints/passed_over/: the damaged or diverged checkpoints a resume passed over
# What TensorFlow raises for a damaged checkpoint: OpError subclasses (DataLoss, NotFound, ...),
# ValueError or IndexError ("Read less bytes than requested") for truncated files.
CHECKPOINT_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError)

LAST_FORMAT_1_COMMIT = "c715ea5"  # the last alae_tf that reads run format 1 (before the backbone protocol)


def model_checkpoint(model: TrainedModel) -> tf.train.Checkpoint:
    """The model (its nets, live and EMA, and the step counter, which fixes the data position) and
    its optimizers (ALAE: optimizer_ed, optimizer_fg)."""
    return tf.train.Checkpoint(model=model, **model.checkpointed_optimizers())


def checkpoint_manager(model: TrainedModel, run: RunDir, max_to_keep=3) -> tf.train.CheckpointManager:
    """The manager that writes `ckpt-<step>` files and keeps the newest `max_to_keep`. A save killed
    between writing ckpt-N and the state file leaves ckpt-N unlisted, and a manager never deletes
    what the state file does not list: the state is then rewritten to list every ckpt-N on disk."""
    manager = _open_manager(model, run, max_to_keep)
    on_disk = checkpoint_paths(run)[::-1]  # oldest first, as the state file lists them
    if on_disk and {Path(path).name for path in on_disk} != {Path(path).name for path in manager.checkpoints}:
        # With their save times: the manager keeps listed checkpoints without one for ever.
        state = tf.compat.v1.train.generate_checkpoint_state_proto(
            str(run.checkpoints), on_disk[-1], all_model_checkpoint_paths=on_disk,
            all_model_checkpoint_timestamps=[os.path.getmtime(path + ".index") for path in on_disk],
            last_preserved_timestamp=0.0)
        write_text_atomically(run.checkpoint_state, text_format.MessageToString(state))
        manager = _open_manager(model, run, max_to_keep)
    return manager


def _open_manager(model: TrainedModel, run: RunDir, max_to_keep: int) -> tf.train.CheckpointManager:
    try:
        return tf.train.CheckpointManager(model_checkpoint(model), str(run.checkpoints), max_to_keep=max_to_keep)
    except UnicodeDecodeError:  # a binary-garbage state file (text garbage TensorFlow ignores itself)
        state = run.checkpoint_state
        state.replace(state.with_name("checkpoint.damaged"))
        print(f"warning: {state}: damaged; moved aside to checkpoint.damaged (the ckpt-N files are kept)", file=sys.stderr)
        return tf.train.CheckpointManager(model_checkpoint(model), str(run.checkpoints), max_to_keep=max_to_keep)


def set_aside_newer_checkpoints(run: RunDir, restored: str) -> None:
    """Move the checkpoints newer than `restored`, which `newest_intact_checkpoint` passed over
    (damaged or diverged), into RUN/checkpoints/passed_over/: kept for a look, and out of the
    manager's rotation, which would count them among the ones it keeps and delete intact ones."""
    newer = [Path(path) for path in checkpoint_paths(run) if checkpoint_step(path) > checkpoint_step(restored)]
    if not newer:
        return
    folder = run.checkpoints / PASSED_OVER
    folder.mkdir(exist_ok=True)
    for prefix in newer:
        for file in prefix.parent.glob(prefix.name + ".*"):
            file.replace(folder / file.name)
    print(f"moved {', '.join(prefix.name for prefix in newer)} to {folder} (kept; no longer rotated)", file=sys.stderr)


def checkpoint_paths(run: RunDir) -> list[str]:
    """The run's checkpoint prefixes (`RUN/checkpoints/ckpt-N` with an index file), newest first."""
    prefixes = [str(index.with_suffix("")) for index in run.checkpoints.glob(f"{CHECKPOINT_PREFIX}-*.index")]
    return sorted((prefix for prefix in prefixes if checkpoint_step(prefix) is not None), key=checkpoint_step, reverse=True)


def checkpoint_name(step: int) -> str:
    """The name of the checkpoint holding `step` (every save numbers it by the model's step)."""
    return f"{CHECKPOINT_PREFIX}-{step}"


def checkpoint_step(prefix: str) -> int | None:
    """N of a `.../ckpt-N` prefix (the step it was saved at), None for other names."""
    number = Path(prefix).name.removeprefix(f"{CHECKPOINT_PREFIX}-")
    return int(number) if number.isdigit() else None


def remove_killed_saves(run: RunDir) -> None:
    """Delete what a save killed midway leaves: `ckpt-N_temp/` folders (never a usable checkpoint)
    and `checkpoint.tmp<hex>` files (the state file's atomic rewrite, never renamed into place)."""
    for folder in run.checkpoints.glob(f"{CHECKPOINT_PREFIX}-*_temp"):
        shutil.rmtree(folder, ignore_errors=True)
    for partial in run.checkpoints.glob("checkpoint.tmp*"):
        partial.unlink(missing_ok=True)


def checkpoint_problem(path: str) -> str | None:
    """Why the checkpoint at prefix `path` cannot be used (missing, damaged, or holding NaN or
    infinity), or None. Reads every tensor, so TensorFlow checks each one's checksum."""
    if not Path(path + ".index").is_file():
        return f"no such checkpoint (expected {path}.index)"
    nonfinite, tensors = [], 0
    try:
        reader = tf.train.load_checkpoint(path)
        for key, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                tensors += 1
                if not np.isfinite(reader.get_tensor(key)).all():
                    nonfinite.append(key)
            else:
                reader.get_tensor(key)
    except CHECKPOINT_READ_ERRORS as exc:
        return f"damaged ({first_line(exc)})"
    if nonfinite:
        return f"{len(nonfinite)} of its {tensors} float tensors hold NaN or infinity (saved from a diverged run)"
    return None


def newest_intact_checkpoint(run: RunDir) -> str | None:
    """The newest usable checkpoint (None when the run has none yet). Damaged or diverged newer ones
    are passed over with one warning line; when none is usable, an ALAEError (nothing is deleted)."""
    skipped = []
    if (named := newest_in_state_file(run)) is not None and not (run.checkpoints / f"{named}.index").is_file():
        skipped.append(f"{named}: missing (checkpoints/checkpoint names it as the newest; its files were deleted?)")
    for path in checkpoint_paths(run):
        problem = checkpoint_problem(path)
        if problem is None:
            if skipped:
                print(f"warning: passed over {'; '.join(skipped)}; using {Path(path).name}", file=sys.stderr)
            return path
        skipped.append(f"{Path(path).name}: {problem}")
    if skipped:
        raise ALAEError(f"{run.checkpoints}: no usable checkpoint ({'; '.join(skipped)}); nothing was deleted: "
                        "restore the files from a backup, or train anew with another --out")
    return None


def newest_in_state_file(run: RunDir) -> str | None:
    """The name (ckpt-N) the run's state file, RUN/checkpoints/checkpoint (a text proto TensorFlow
    writes at every save), gives as the newest checkpoint; None without a readable one."""
    try:
        text = (run.checkpoint_state).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(r'^model_checkpoint_path: "([^"]+)"', text, re.MULTILINE)
    name = Path(match[1]).name if match else None
    return name if name and checkpoint_step(name) is not None else None


CHECKPOINT_FILE_SUFFIX = re.compile(r"\.(index|data-\d+-of-\d+)$")


def named_checkpoint(run: RunDir, checkpoint: str) -> str:
    """The prefix of a checkpoint of `run` named on a command line: RUN/checkpoints/ckpt-N, its bare
    name ckpt-N, or one of its files (ckpt-N.index, as a shell completes it). A checkpoint of
    another run is refused: its weights would be reported, exported or edited under this run's
    name, data and directions."""
    path = Path(checkpoint)
    if path.is_dir():
        raise ALAEError(f"{checkpoint}: a directory; name one checkpoint in it (e.g. RUN/checkpoints/ckpt-5000)")
    if path.parent == Path(".") and not path.exists():  # a bare name, ckpt-5000: the run's own
        path = run.checkpoints / path
    prefix = path.with_name(CHECKPOINT_FILE_SUFFIX.sub("", path.name))
    if prefix.resolve().parent not in (run.checkpoints.resolve(), (run.checkpoints / PASSED_OVER).resolve()):
        raise ALAEError(f"{checkpoint}: not a checkpoint of the run {run.root} (whose checkpoints are in "
                        f"{run.checkpoints}); pass the run it belongs to with --run")
    return str(prefix)


def run_checkpoint(run: RunDir, checkpoint: str | None = None) -> str:
    """The checkpoint to load: the one named (see `named_checkpoint`), refused if damaged; else the
    newest intact one (damaged or diverged newer ones are passed over)."""
    if checkpoint is None:
        newest = newest_intact_checkpoint(run)
        if newest is None:
            raise ALAEError(f"{run.checkpoints}: no checkpoint yet (training saves every train.checkpoint_every steps, "
                            "at its end and when it is stopped; a run that diverged before its first save has none)")
        return newest
    prefix = named_checkpoint(run, checkpoint)
    if problem := checkpoint_problem(prefix):
        raise ALAEError(f"{checkpoint}: {problem}")
    return prefix


def nonfinite_variables(model: TrainedModel) -> list[str]:
    """Paths of the checkpointed float variables (model, optimizers) holding NaN or infinity."""
    variables = model.weights + [v for optimizer in model.checkpointed_optimizers().values() for v in optimizer.variables]
    return [v.path for v in variables if "float" in str(v.dtype) and not np.isfinite(v.numpy()).all()]


def read_run_config(run: RunDir) -> Config:
    """The run's config.yaml, refused with one line if an older alae_tf wrote it, or if its data
    path is relative (alae_tf before 2026-12-04 kept --data-path as given: relative to the folder
    that run was started from, it named other data from anywhere else, and a resume then trained
    on it and wrote its absolute path into the run)."""
    raw = read_yaml_file(run.config_file)
    if isinstance(raw, dict) and raw.get("format") != RUN_FORMAT:
        raise ConfigError(
            f"{run.root}: written by an older alae_tf (run format {raw.get('format', 1)}, this version reads "
            f"{RUN_FORMAT}); its checkpoints do not load here: retrain, or use alae_tf at commit "
            f"{LAST_FORMAT_1_COMMIT} (git checkout {LAST_FORMAT_1_COMMIT}) to evaluate or export it"
        )
    config = Config.from_dict(raw, str(run.config_file))
    if config.data.path is not None and not os.path.isabs(os.path.expanduser(config.data.path)):
        raise ConfigError(f"{run.config_file}: data.path {config.data.path!r} is relative (an alae_tf before "
                          "2026-12-04 kept --data-path as given, relative to the folder the run was started from): "
                          "set it to the data's absolute path in that file")
    return config


def restore(model: TrainedModel, path: str) -> None:
    """Load checkpoint `path` into `model` (both optimizers included); every object must match."""
    try:
        model_checkpoint(model).restore(path).assert_existing_objects_matched()
    except (*CHECKPOINT_READ_ERRORS, AssertionError) as exc:
        _expect_partial_restores()
        raise ALAEError(f"{path}: does not fit this run's model ({first_line(exc)})") from None


def _expect_partial_restores() -> None:
    """A failed restore leaves TensorFlow's restore coordinator referenced from the model's
    variables; collected with them (at exit, after our error line) it logged every value it had
    not restored, dozens of lines. TensorFlow offers `status.expect_partial()` to silence it, but
    a restore that raised returns no status: mark the coordinators themselves."""
    from tensorflow.python.checkpoint.checkpoint import _CheckpointRestoreCoordinator

    for coordinator in gc.get_objects():
        if isinstance(coordinator, _CheckpointRestoreCoordinator):
            coordinator.expect_partial = True


# A run being trained keeps its newest few checkpoints: the one chosen may be deleted before it is
# read (an audit's export failed so once in 7 while a run saved every 10 steps).
PRUNED_RETRIES = 3


def load_run(path, checkpoint=None) -> tuple[Config, TrainedModel]:
    """Rebuild a trained model from its run directory: the named checkpoint, else the newest intact
    one (chosen again when training deletes it while it is read). Sets Keras's global dtype policy
    to float32: what is built after it (metrics' networks, exported graphs) computes in float32 too."""
    run = existing_run(path)
    config = read_run_config(run)
    set_precision("none")  # evaluation and export run in float32 whatever the training precision
    for attempt in range(1, PRUNED_RETRIES + 1):
        target = run_checkpoint(run, checkpoint)
        model = build_model(config)
        try:
            restore(model, target)
            break
        except ALAEError as exc:
            if not Path(f"{target}.index").exists():
                if checkpoint is None and attempt < PRUNED_RETRIES:
                    continue
                raise ALAEError(f"{target}: deleted while it was read (a run being trained keeps only its newest "
                                "checkpoints); try again, or name a newer one with --checkpoint") from None
            if BACKBONES[config.model.backbone].converted:
                raise ALAEError(f"{exc}; runs converted before 2026-12-03 store G's upscaling kernels from 128x128 "
                                "up transposed: convert the official checkpoint again (python -m alae_tf.convert)"
                                ) from None
            raise
    if (warning := untrained_top_level(config, model.step)) is not None:
        print(f"warning: {Path(target).name}: {warning}", file=sys.stderr)
    return config, model


def untrained_top_level(config: Config, step: int) -> str | None:
    """Why the full-resolution networks of a growing model at `step` are not trained yet, or None.

    Export, evaluation and editing use them, while a run still growing shows its samples at the
    level it trains: the images differ, and the full-resolution ones are noise."""
    schedule = phases(config)
    top = schedule[-1]
    if step >= top.first_step:
        return None
    current = phase_at(schedule, step)
    return (f"step {step} trains level {current.level} ({current.resolution}x{current.resolution}) of the "
            f"{len(schedule)} levels; the full-resolution ({top.resolution}x{top.resolution}) networks used here start "
            f"training at step {top.first_step}, so their images are not yet what the run's samples show")


def data_change(run: RunDir, source) -> str | None:
    """What changed in the run's image folder or prepared dataset since the run started, or None
    (unchanged, MNIST, or a run from before this record)."""
    if source.contents is None or not run.data_file.is_file():
        return None
    then = run.data_file.read_text().strip()
    if then == source.contents:
        return None
    return (f"the run's data changed since this run started ({then.split(',')[0]} then, "
            f"{source.contents.split(',')[0]} now, or other images): its held-out split and training order are "
            "drawn again from the new data, so held-out images of before may now be trained on")


def record_data_contents(run: RunDir, source) -> None:
    if source.contents is not None:
        write_text_atomically(run.data_file, source.contents + "\n")
