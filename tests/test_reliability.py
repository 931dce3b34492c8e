"""Reliability: a diverged model is never saved, a damaged run falls back to its newest intact
checkpoint, log.csv keeps one row per step, hostile data and third-party files get one clear error.
(The long runs, kill -9 at random moments and the fuzzed server, are benchmarks/reliability.py.)"""

import contextlib
import gc
import gzip
import logging
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import export.__main__ as export_cli
from alae_tf import atomic_file, schedule, train, training
from alae_tf.callbacks import CheckpointSaver, TrainingDiverged, drop_log_rows_after
from alae_tf.data import ImageSource, open_image_source
from alae_tf.data import mnist as mnist_module
from alae_tf.errors import ALAEError, DataError
from alae_tf.metrics import inception
from alae_tf.model import build_alae
from alae_tf.run_dir import (
    RunDir,
    checkpoint_manager,
    checkpoint_paths,
    checkpoint_problem,
    load_run,
    model_checkpoint,
    newest_intact_checkpoint,
    restore,
    run_checkpoint,
)
from export import build, tf_serving_files, verify
from serving import layout


@pytest.fixture
def model(tiny_config):
    return build_alae(tiny_config)


def fit(model, config, images, saver, total):
    source = ImageSource.from_arrays(images)
    training.fit_schedule(model, config, source, schedule.phases(config), model.step, total, callbacks=[saver], verbose=0)


def test_a_diverged_step_stops_training_before_anything_of_it_is_saved(model, tiny_config, tiny_images, tmp_path):
    run = RunDir(tmp_path)
    saver = CheckpointSaver(checkpoint_manager(model, run), every=2)
    fit(model, tiny_config, tiny_images, saver, total=4)
    model.generator.trainable_variables[0].assign(np.full(model.generator.trainable_variables[0].shape, np.nan))
    with pytest.raises(TrainingDiverged) as stopped:
        fit(model, tiny_config, tiny_images, saver, total=8)
    newest = str(tmp_path / "checkpoints" / "ckpt-4")
    assert "diverged at step 5 (" in str(stopped.value) and f"newest good checkpoint is {newest} (step 4)" in str(stopped.value)
    assert checkpoint_paths(run) == [newest, str(tmp_path / "checkpoints" / "ckpt-2")]
    assert all(checkpoint_problem(path) is None for path in checkpoint_paths(run))


def test_no_save_writes_a_nonfinite_optimizer_slot(model, tmp_path):
    saver = CheckpointSaver(checkpoint_manager(model, RunDir(tmp_path)), every=100)
    saver.set_model(model)
    model.trained_steps.assign(1)
    slot = model.optimizer_ed.variables[-1]
    slot.assign(np.full(slot.shape, np.inf, np.float32))
    with pytest.raises(TrainingDiverged, match=r"at step 1 \(.*not finite\).*no checkpoint was saved before it"):
        saver.save()
    assert not (tmp_path / "checkpoints").exists()


@pytest.fixture
def saved_run(model, tiny_config, tmp_path):
    """A run directory with checkpoints at steps 1, 2 and 3 (no training: the step counter is set)."""
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    (run.config_file).write_text(yaml.safe_dump(tiny_config.to_dict()))
    manager = checkpoint_manager(model, run)
    for step in (1, 2, 3):
        model.trained_steps.assign(step)
        manager.save(checkpoint_number=step)
    return run


def truncate_data(prefix):
    data = prefix + ".data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)


def flip_a_byte(prefix):
    data = prefix + ".data-00000-of-00001"
    raw = bytearray(open(data, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(data, "wb").write(bytes(raw))


def garbage_index(prefix):
    open(prefix + ".index", "wb").write(os.urandom(4096))


def write_nonfinite_values(prefix, model):
    weight = model.generator.trainable_variables[0]
    weight.assign(np.full(weight.shape, np.inf, np.float32))
    model_checkpoint(model).write(prefix)


@pytest.mark.parametrize("damage, problem", [
    ("truncated data", "damaged"), ("flipped byte", "damaged"), ("garbage index", "damaged"),
    ("non-finite values", "hold NaN or infinity"),
])
def test_loading_passes_over_a_damaged_newest_checkpoint_with_one_warning(saved_run, model, damage, problem, capsys):
    newest = str(saved_run.checkpoints / "ckpt-3")
    damages = {"truncated data": truncate_data, "flipped byte": flip_a_byte, "garbage index": garbage_index,
               "non-finite values": lambda prefix: write_nonfinite_values(prefix, model)}
    damages[damage](newest)
    config, restored = load_run(saved_run.root)
    assert restored.step == 2
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: passed over ckpt-3: ") and problem in warning and warning.endswith("using ckpt-2")
    with pytest.raises(ALAEError, match=f"ckpt-3: .*{problem}"):
        load_run(saved_run.root, newest)  # a checkpoint named on purpose is never swapped


def test_a_newest_checkpoint_whose_files_are_gone_is_named_in_the_warning(saved_run, capsys):
    """With ckpt-3's files deleted (the state file still naming it), export and edit took ckpt-2
    without a word, where a damaged ckpt-3 is named; with every checkpoint gone, the run read as one
    not yet trained."""
    for file in saved_run.checkpoints.glob("ckpt-3.*"):
        file.unlink()
    config, restored = load_run(saved_run.root)
    assert restored.step == 2
    assert capsys.readouterr().err == ("warning: passed over ckpt-3: missing (checkpoints/checkpoint names it as the "
                                       "newest; its files were deleted?); using ckpt-2\n")
    for file in saved_run.checkpoints.glob("ckpt-[12].*"):
        file.unlink()
    with pytest.raises(ALAEError, match="no usable checkpoint \\(ckpt-3: missing"):
        load_run(saved_run.root)
    (saved_run.checkpoints / "checkpoint").write_bytes(b"\xff\xfe garbage")  # an unreadable state file: no claim
    with pytest.raises(ALAEError, match="no checkpoint"):
        load_run(saved_run.root)


def test_a_checkpoint_deleted_by_training_while_it_is_read_is_chosen_again(saved_run, monkeypatch):
    """A run being trained deletes its older checkpoints: export chose ckpt-N, training removed it,
    and the restore said "does not fit this run's model" (an audit's export, once in 7)."""
    from alae_tf import run_dir

    real_restore, deleted = run_dir.restore, []

    def pruned_first(model, path):
        if not deleted:
            deleted.append(Path(path).name)
            for file in Path(path).parent.glob(Path(path).name + ".*"):
                file.unlink()
        return real_restore(model, path)

    monkeypatch.setattr(run_dir, "restore", pruned_first)
    config, restored = load_run(saved_run.root)
    assert deleted == ["ckpt-3"] and restored.step == 2
    deleted.clear()
    with pytest.raises(ALAEError, match=r"ckpt-2: deleted while it was read \(a run being trained keeps only its newest"):
        load_run(saved_run.root, "ckpt-2")  # a checkpoint named on purpose is never swapped


def test_no_usable_checkpoint_is_one_error_and_nothing_is_deleted(saved_run):
    for path in checkpoint_paths(saved_run):
        truncate_data(path)
    files = sorted(saved_run.checkpoints.iterdir())
    with pytest.raises(ALAEError, match=r"no usable checkpoint \(ckpt-3: damaged .*ckpt-1: damaged .*nothing was deleted"):
        newest_intact_checkpoint(saved_run)
    assert sorted(saved_run.checkpoints.iterdir()) == files


def test_a_run_without_checkpoints_is_one_error_that_does_not_say_train_longer(saved_run):
    """A run that diverged before its first save has none: "train longer" (resuming would repeat
    the divergence) contradicted train's own advice."""
    for path in saved_run.checkpoints.iterdir():
        path.unlink()
    with pytest.raises(ALAEError, match=r"checkpoints: no checkpoint yet \(training saves every train.checkpoint_every "
                                        r"steps, at its end and when it is stopped; a run that diverged before its first "
                                        r"save has none\)$"):
        run_checkpoint(saved_run)


@contextlib.contextmanager
def tensorflow_log():
    """The records TensorFlow's logger emits inside the block (a list, filled as they come)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_a_checkpoint_of_another_model_is_one_error_without_tensorflows_warnings(saved_run, tiny_config):
    """TensorFlow logged every value the failed restore left unrestored (dozens of lines, when the
    model is collected: at exit) after our error line."""
    with tensorflow_log() as records:
        tiny_config.model.hidden_dim = 12
        other = build_alae(tiny_config)
        with pytest.raises(ALAEError, match=r"ckpt-3: does not fit this run's model \(.*incompatible tensor with shape"):
            restore(other, str(saved_run.checkpoints / "ckpt-3"))
        del other  # as the trainer's model, collected at exit
        gc.collect()
    assert [record.getMessage() for record in records] == []


def test_a_checkpoint_whose_values_have_other_dtypes_is_one_error_without_tensorflows_warnings(saved_run, tiny_config):
    """fp16's optimizers (a loss scale, an int step counter where float32's is a float): the restore
    fails inside TensorFlow's RestoreV2, whose coordinator stays referenced from the model and
    listed every unrestored value when collected, at exit."""
    from alae_tf.compute import set_precision

    with tensorflow_log() as records:
        tiny_config.train.mixed_precision = "fp16"
        set_precision("fp16")
        try:
            other = build_alae(tiny_config)
            with pytest.raises(ALAEError) as refused:
                restore(other, str(saved_run.checkpoints / "ckpt-3"))
        finally:
            set_precision("none")
        del other
        gc.collect()
    assert str(refused.value).startswith(f"{saved_run.checkpoints / 'ckpt-3'}: does not fit this run's model (tensor_name = ")
    assert [record.getMessage() for record in records] == []


def test_checkpoints_are_found_without_the_state_file(saved_run, model, capsys):
    state = saved_run.checkpoints / "checkpoint"
    state.write_text("garbage {{{")  # TensorFlow itself would report no checkpoint at all
    assert newest_intact_checkpoint(saved_run) == str(saved_run.checkpoints / "ckpt-3")
    state.write_bytes(os.urandom(300))  # TensorFlow's CheckpointManager raises UnicodeDecodeError on these
    manager = checkpoint_manager(model, saved_run)
    assert "checkpoint: damaged; moved aside" in capsys.readouterr().err
    assert (saved_run.checkpoints / "checkpoint.damaged").is_file()
    # The state is rebuilt from the files, so the manager keeps deleting the oldest as it saves.
    assert [Path(path).name for path in manager.checkpoints] == ["ckpt-1", "ckpt-2", "ckpt-3"]


def test_a_checkpoint_the_state_file_does_not_list_is_still_rotated_out(saved_run, model):
    """A kill between writing ckpt-N and rewriting the state file (seen in the multi-worker kill test)."""
    (saved_run.checkpoints / "checkpoint").unlink()
    manager = checkpoint_manager(model, saved_run)
    manager.save(checkpoint_number=4)
    assert [path.name for path in sorted(saved_run.checkpoints.glob("ckpt-*.index"))] == [
        "ckpt-2.index", "ckpt-3.index", "ckpt-4.index"]


def test_log_rows_after_the_resumed_step_and_torn_rows_are_dropped(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("step,loss_d,loss_g\n5,1.0,2.0\n10,1.5,2.5\n15,1.2,2.2\n20,1.1")
    drop_log_rows_after(log, 10)
    assert log.read_text().splitlines() == ["step,loss_d,loss_g", "5,1.0,2.0", "10,1.5,2.5"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["log.csv"]


# --- one command line run through a damaged run directory -----------------------------------

TINY_RUN = """
preset: tiny
data: {dataset: folder}
model: {image_shape: [8, 8, 1], latent_dim: 6, mapping_layers: 2, hidden_dim: 16, disc_hidden: 6}
train: {batch_size: 8, steps: 4, checkpoint_every: 2, sample_every: 100, log_every: 1, ema_half_life_images: 20.0}
"""


@pytest.fixture
def hostile_folder(tmp_path):
    """24 grayscale PNGs, one RGB PNG among them, and a FIFO named like an image."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / "rgb.png")
    os.mkfifo(folder / "pipe.png")
    return folder


def test_training_converts_skips_and_resumes_past_a_damaged_checkpoint(hostile_folder, tmp_path, capsys):
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN)
    command = ["--config", str(config), "--out", str(out), "--data-path", str(hostile_folder), "--verbose", "0"]
    assert train.main(command) == 0
    printed = capsys.readouterr().out
    assert "25 images (2 held out, 1 unreadable skipped, 1 converted to grayscale)" in printed

    truncate_data(str(out / "checkpoints" / "ckpt-4"))
    (out / "checkpoints" / "ckpt-5_temp").mkdir()  # what a save killed midway leaves
    (out / "checkpoints" / "checkpoint.tmp1c6d0afb65004b49").write_text("partial")  # (seen after a kill)
    assert train.main(command + ["--steps", "6"]) == 0
    captured = capsys.readouterr()
    assert "resuming at step 2" in captured.out and "passed over ckpt-4: damaged" in captured.err
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()] == ["step", *"123456"]
    assert not (out / "checkpoints" / "ckpt-5_temp").exists()
    assert not list((out / "checkpoints").glob("checkpoint.tmp*"))
    assert checkpoint_problem(str(out / "checkpoints" / "ckpt-4")) is None  # written anew


def test_a_resume_sets_passed_over_checkpoints_aside_and_keeps_three_usable(hostile_folder, tmp_path, capsys):
    """ckpt-2, 4, 6 with 6 damaged: the resume from 4 moves ckpt-6 to passed_over/, so the rotation
    that saves ckpt-5 keeps 2, 4 and 5 (it used to count ckpt-6 and delete the intact ckpt-2)."""
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN)
    command = ["--config", str(config), "--out", str(out), "--data-path", str(hostile_folder), "--verbose", "0"]
    assert train.main(command + ["--steps", "6"]) == 0
    truncate_data(str(out / "checkpoints" / "ckpt-6"))
    damaged = {path.name: path.read_bytes() for path in (out / "checkpoints").glob("ckpt-6.*")}
    capsys.readouterr()
    assert train.main(command + ["--steps", "5"]) == 0
    err = capsys.readouterr().err
    assert "passed over ckpt-6: damaged" in err and "moved ckpt-6 to" in err
    assert [Path(path).name for path in checkpoint_paths(RunDir(out))] == ["ckpt-5", "ckpt-4", "ckpt-2"]
    assert all(checkpoint_problem(str(out / "checkpoints" / f"ckpt-{n}")) is None for n in (2, 4, 5))
    aside = out / "checkpoints" / "passed_over"
    assert {path.name: path.read_bytes() for path in aside.iterdir()} == damaged


def test_checkpoints_and_grids_follow_their_intervals_and_the_end_not_epochs(hostile_folder, tmp_path):
    """22 training images at batch 8: an epoch every 2 steps, one `fit` call each. Saves and grids
    come at --checkpoint-every / --sample-every and at the run's end only (they used to come at
    every epoch's end too, pushing the interval's checkpoints out of the 3 kept)."""
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN)
    assert train.main(["--config", str(config), "--out", str(out), "--data-path", str(hostile_folder), "--verbose", "0",
                       "--steps", "7", "--checkpoint-every", "4", "--sample-every", "3"]) == 0
    assert [Path(path).name for path in checkpoint_paths(RunDir(out))] == ["ckpt-7", "ckpt-4"]
    assert sorted(path.name for path in (out / "samples").glob("samples_*.png")) == [
        "samples_0000003.png", "samples_0000006.png", "samples_0000007.png"]


def test_data_without_held_out_images_trains_and_writes_grids_without_reconstructions(hostile_folder, tmp_path):
    """data.test_count 0 (prepare --test-count 0 allows it): the last grids crashed on the missing
    test images, after training and before the last checkpoint."""
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN.replace("data: {dataset: folder}", "data: {dataset: folder, test_count: 0}"))
    assert train.main(["--config", str(config), "--out", str(out), "--data-path", str(hostile_folder), "--verbose", "0",
                       "--steps", "3", "--checkpoint-every", "100"]) == 0
    assert [Path(path).name for path in checkpoint_paths(RunDir(out))] == ["ckpt-3"]
    assert {path.name for path in (out / "samples").iterdir()} == {"samples_0000003.png", "interpolations_0000003.png"}


def test_a_preset_is_a_name_and_writes_nothing_when_unknown(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text(TINY_RUN)
    assert train.main(["--preset", "../x", "--verbose", "0"]) == 2
    assert "unknown preset '../x'" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x.yaml"]


def test_data_with_other_channels_than_the_model_is_converted_or_refused_in_one_line(hostile_folder):
    with pytest.raises(DataError, match=r"the images have 1 channel\(s\) but the model takes 3"):
        open_image_source("mnist", None, 8, channels=3, mnist_source="package")
    rgb = open_image_source("folder", str(hostile_folder), 8, channels=3)
    assert rgb.channels == 3 and rgb.test_images(8).shape[-1] == 3


# --- third-party files --------------------------------------------------------------------------


def torchscript_archive(path, offset, shape, strides, storage_elements=4):
    """A TorchScript-like zip whose data.pkl is {"weight": tensor}, the tensor a view of a float
    storage of `storage_elements` (the pickle is written opcode by opcode: torch is not needed)."""

    def integer(n):
        return b"J" + struct.pack("<i", n)

    def text(value):
        return b"X" + struct.pack("<I", len(value)) + value.encode()

    def tuple_of(items):
        return b"(" + b"".join(items) + b"t"

    storage = tuple_of([text("storage"), b"ctorch\nFloatStorage\n", text("0"), text("cpu"), integer(storage_elements)]) + b"Q"
    arguments = tuple_of([storage, integer(offset), tuple_of(map(integer, shape)), tuple_of(map(integer, strides)), b"\x89N"])
    data = b"\x80\x02}" + text("weight") + b"ctorch._utils\n_rebuild_tensor_v2\n" + arguments + b"Rs."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/data/0", np.arange(storage_elements, dtype="<f4").tobytes())


@pytest.mark.parametrize("offset, shape, strides, message", [
    (0, (2, 2), (2, 1), None),
    (0, (2, 2), (1000, 1), "reads past the end of its storage"),
    (3, (2,), (1,), "reads past the end of its storage"),
    (0, (2,), (-1,), "malformed tensor"),
    (0, (2, 2), (1,), "malformed tensor"),
])
def test_torchscript_tensors_must_lie_inside_their_storage(tmp_path, offset, shape, strides, message):
    path = tmp_path / "crafted.pt"
    torchscript_archive(path, offset, shape, strides)
    if message is None:
        np.testing.assert_array_equal(inception.read_torchscript(path)["weight"], [[0, 1], [2, 3]])
    else:
        with pytest.raises(ALAEError, match=message):
            inception.read_torchscript(path)


def test_the_mnist_package_pickle_may_hold_arrays_only(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    hostile = tmp_path / "mnist.pkl.gz"
    with gzip.open(hostile, "wb") as file:
        file.write(b"cos\nsystem\n(V touch " + str(marker).encode() + b"\ntR.")
    monkeypatch.setattr(mnist_module, "_package_pickle_path", lambda: hostile)
    with pytest.raises(DataError, match="os.system is not allowed in an MNIST pickle"):
        mnist_module.load_mnist("package")
    assert not marker.exists()


# --- export publishing --------------------------------------------------------------------------


def test_staging_folders_are_judged_by_their_lock_not_by_a_pid(tmp_path):
    """An export in another container (another PID namespace) on a shared volume has a PID this
    one cannot see: its live staging folder was deleted as a killed one's, and it died at its
    next write with a FileNotFoundError traceback."""
    unseen_pid = 2**22 + 1  # above Linux's largest pid_max: no process of this namespace has it
    live = tmp_path / f".staging-m-1-{unseen_pid}-aaaa"
    held = atomic_file.make_staging_folder(live)  # its builder, alive elsewhere
    (live / "onnx").mkdir()
    atomic_file.make_staging_folder(tmp_path / ".staging-m-2-7-bbbb").close()  # its builder was killed
    old_kind = tmp_path / ".staging-m-3-7"  # made before the lock, by a process long gone
    old_kind.mkdir()
    os.utime(old_kind, (os.path.getmtime(old_kind) - 120,) * 2)
    (tmp_path / ".staging-m-4-7").mkdir()  # no lock yet: made a moment ago
    (tmp_path / "kept").mkdir()  # not a staging folder
    atomic_file.remove_abandoned_staging(tmp_path, ".staging-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-m-1-4194305-aaaa", ".staging-m-4-7", "kept"]
    assert (live / "onnx").is_dir()
    held.close()  # its builder ends (or dies): the lock is free
    atomic_file.remove_abandoned_staging(tmp_path, ".staging-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-m-4-7", "kept"]
    with pytest.raises(FileExistsError):
        atomic_file.make_staging_folder(tmp_path / "kept")


def built_halves(staging, marker):
    for half in ("onnx", "saved_model"):
        (staging / half).mkdir(parents=True)
        (staging / half / "marker").write_text(marker)


def published(out, name="m", version=1):
    halves = (layout.onnx_dir(out, name, version), layout.saved_model_dir(out, name, version))
    return [(half / "marker").read_text() if half.is_dir() else None for half in halves]


def test_overwrite_exchanges_both_halves_and_keeps_the_old_ones_until_then(tmp_path):
    built_halves(tmp_path / "first", "old")
    build.publish(tmp_path / "first", tmp_path, "m", 1, overwrite=False)
    built_halves(tmp_path / "second", "new")
    build.publish(tmp_path / "second", tmp_path, "m", 1, overwrite=True)
    assert published(tmp_path) == ["new", "new"]
    assert [(tmp_path / "second" / half / "marker").read_text() for half in ("onnx", "saved_model")] == ["old", "old"]


@pytest.mark.parametrize("existing", [None, "old"])
def test_a_failed_publish_moves_the_first_half_back(tmp_path, monkeypatch, existing):
    if existing:
        built_halves(tmp_path / "first", existing)
        build.publish(tmp_path / "first", tmp_path, "m", 1, overwrite=False)
    built_halves(tmp_path / "staging", "new")

    def failing_on_the_saved_model(move):
        def move_or_fail(source, target):
            if source.name == "saved_model":
                raise OSError(28, "No space left on device")
            move(source, target)
        return move_or_fail

    monkeypatch.setattr(build, "swap", failing_on_the_saved_model(build.swap))
    monkeypatch.setattr(build, "move_unless_exists", failing_on_the_saved_model(build.move_unless_exists))
    with pytest.raises(ALAEError, match=r"cannot publish m version 1 .*No space left on device.*nothing was published"):
        build.publish(tmp_path / "staging", tmp_path, "m", 1, overwrite=existing is not None)
    assert published(tmp_path) == [existing, existing]
    assert [(tmp_path / "staging" / half / "marker").read_text() for half in ("onnx", "saved_model")] == ["new", "new"]


@pytest.mark.parametrize("renameat2", ["linux", "absent"])
@pytest.mark.parametrize("appeared", ["onnx", "saved_model", "both"])
def test_a_version_published_meanwhile_is_kept_without_overwrite(tmp_path, monkeypatch, renameat2, appeared):
    """Two exports into one directory chose the same version: the second to publish leaves the
    first's halves as they are and publishes nothing (not even one half)."""
    if renameat2 == "absent":
        monkeypatch.setattr(atomic_file, "_renameat2", lambda source, target, flags: False)
    built_halves(tmp_path / "first", "first")
    if appeared == "both":
        build.publish(tmp_path / "first", tmp_path, "m", 1, overwrite=False)
    else:
        (layout.onnx_dir(tmp_path, "m", 1) if appeared == "onnx" else layout.saved_model_dir(tmp_path, "m", 1)).parent.mkdir(parents=True)
        (tmp_path / "first" / appeared).rename(layout.onnx_dir(tmp_path, "m", 1) if appeared == "onnx"
                                               else layout.saved_model_dir(tmp_path, "m", 1))
    before = published(tmp_path)
    built_halves(tmp_path / "second", "second")
    with pytest.raises(ALAEError, match=r"version 1 of m appeared while this export was building.*nothing was published.*--overwrite"):
        build.publish(tmp_path / "second", tmp_path, "m", 1, overwrite=False)
    assert published(tmp_path) == before
    assert [(tmp_path / "second" / half / "marker").read_text() for half in ("onnx", "saved_model")] == ["second", "second"]


@pytest.mark.parametrize("name", ['a"b', "a:predict", "x" * 65, ".hidden", "a/b", "", "é"])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(ALAEError, match="model name .*letters, digits"):
        build.check_name(name)


def test_models_config_is_valid_text_format_for_any_path(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    text = tf_serving_files.models_config({"m": '/exports/with "quotes" and \\ backslash/m'})
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert parsed.model_config_list.config[0].base_path == '/exports/with "quotes" and \\ backslash/m'


def test_export_refuses_a_run_whose_checkpoints_all_diverged(saved_run, model, tmp_path, capsys):
    for path in checkpoint_paths(saved_run):
        write_nonfinite_values(path, model)
    assert export_cli.main(["--run", str(saved_run.root), "--out", str(tmp_path / "export")]) == 2
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("error: ") and "no usable checkpoint" in error and "hold NaN or infinity" in error
    assert not (tmp_path / "export").exists()


def test_the_parity_check_fails_on_nan():
    assert verify.max_abs_diff([0.0, np.nan], [0.0, np.nan]) == np.inf
    assert verify.max_abs_diff([0.5, 1.0], [0.25, 1.0]) == 0.25
