"""The train and evaluate CLIs end to end on real MNIST, with a small network for speed."""

import argparse
import errno
import fcntl
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
import yaml
from terminal import Terminal

from alae_tf import evaluate, evaluation, train, training
from alae_tf.config import load_config_file, load_preset
from alae_tf.errors import ConfigError
from alae_tf.compute import cpu_flags, precision_cpu_warning
from alae_tf.run_dir import RunDir, load_run
from alae_tf.schedule import phases

SMALL = """
preset: mnist_small
model: {hidden_dim: 64, mapping_layers: 2}
train: {steps: 20, checkpoint_every: 10, sample_every: 10, log_every: 5}
"""


@pytest.fixture
def small_config(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def run_train(config, out, *flags):
    return train.main(["--config", str(config), "--out", str(out), "--verbose", "0", *flags])


@pytest.fixture(scope="module")
def ten_steps_trained(tmp_path_factory):
    """A run of SMALL trained for 10 steps, once for the tests that each take a copy (ten_step_run)."""
    root = tmp_path_factory.mktemp("ten_steps")
    (root / "small.yaml").write_text(SMALL)
    assert run_train(root / "small.yaml", root / "run", "--steps", "10") == 0
    return root / "run"


@pytest.fixture(scope="module")
def every_step_log(tmp_path_factory):
    """log.csv's lines of a run of SMALL for 10 steps with a row every step (made once)."""
    root = tmp_path_factory.mktemp("every_step")
    (root / "small.yaml").write_text(SMALL)
    assert run_train(root / "small.yaml", root / "run", "--steps", "10", "--log-every", "1") == 0
    return (root / "run" / "log.csv").read_text().splitlines()


@pytest.fixture
def ten_step_run(ten_steps_trained, tmp_path, capsys):
    """This test's copy of a run of SMALL (small_config) trained for 10 steps."""
    capsys.readouterr()
    return Path(shutil.copytree(ten_steps_trained, tmp_path / "run"))


def checkpoint_values(run_dir):
    """Every saved variable but the save counter, by its checkpoint key."""
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    keys = [k for k in reader.get_variable_to_shape_map() if "save_counter" not in k and "OBJECT_GRAPH" not in k]
    return {key: reader.get_tensor(key) for key in keys}


def test_resumed_run_ends_where_an_uninterrupted_run_ends(small_config, every_step_log, tmp_path, capsys):
    assert run_train(small_config, tmp_path / "a", "--steps", "20") == 0
    assert run_train(small_config, tmp_path / "a", "--steps", "40") == 0
    assert "resuming at step 20" in capsys.readouterr().out
    assert run_train(small_config, tmp_path / "b", "--steps", "40") == 0

    resumed, straight = checkpoint_values(tmp_path / "a"), checkpoint_values(tmp_path / "b")
    assert resumed.keys() == straight.keys()
    # Live and EMA nets, both optimizers' moments and iteration counts, and the step counter.
    assert any("optimizer_ed" in k for k in resumed) and any("generator_ema" in k for k in resumed)
    step_keys = [k for k in resumed if "trained_steps" in k]
    assert step_keys and all(int(resumed[k]) == 40 for k in step_keys)
    for key in resumed:
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-5, atol=1e-6, err_msg=key)

    # Each log row is the means over the steps since the row before: the resumed run's rows after
    # step 20 are the uninterrupted run's (they were means since the resumed step, against means
    # over the epoch so far), and a row every 5 steps is the mean of that run's rows every step.
    def log_rows(run):
        return {int(row[0]): [float(v) for v in row[1:]] for row in csv.reader((run / "log.csv").open()) if row[0] != "step"}

    resumed_rows, straight_rows = log_rows(tmp_path / "a"), log_rows(tmp_path / "b")
    assert sorted(resumed_rows) == sorted(straight_rows) == list(range(5, 41, 5))
    for step in range(25, 41, 5):
        np.testing.assert_allclose(resumed_rows[step], straight_rows[step], rtol=1e-5, err_msg=step)
    every_step = {int(row[0]): [float(v) for v in row[1:]] for row in csv.reader(every_step_log[1:])}
    for step in (5, 10):
        np.testing.assert_allclose(straight_rows[step], np.mean([every_step[s] for s in range(step - 4, step + 1)], axis=0),
                                   rtol=1e-5, err_msg=step)


def test_a_run_writes_its_artifacts_and_evaluates(small_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(small_config, out) == 0
    for name in ("config.yaml", "log.csv", "samples/samples_0000020.png", "samples/reconstructions_0000010.png"):
        assert (out / name).is_file(), name
    assert any((out / "logs").iterdir())  # TensorBoard events
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss_d,loss_g,loss_lae,r1" and len(rows) == 1 + 4

    # A run that stops off the log interval logs its last step too (a run shorter than the
    # interval wrote no log.csv): the state its checkpoint holds.
    assert run_train(small_config, tmp_path / "short", "--steps", "3", "--log-every", "100") == 0
    assert run_train(small_config, tmp_path / "short", "--steps", "7", "--log-every", "5") == 0
    assert [row.split(",")[0] for row in (tmp_path / "short" / "log.csv").read_text().splitlines()] == ["step", "3", "5", "7"]

    assert run_train(small_config, out) == 0
    assert "already trained for 20 steps" in capsys.readouterr().out

    assert evaluate.main(["--run", str(out), "--metrics", "reconstruction"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["step"] == 20 and 0 < report["metrics"]["reconstruction_mse"] < 1

    # Evaluations add up in eval.json: another checkpoint's report goes under other_evaluations,
    # and another metric of step 20 keeps the reconstruction error computed before.
    assert evaluate.main(["--run", str(out), "--metrics", "reconstruction", "--checkpoint", str(out / "checkpoints" / "ckpt-10")]) == 0
    at_10 = json.loads((out / "eval.json").read_text())
    assert at_10["step"] == 10 and at_10["other_evaluations"] == [report]
    capsys.readouterr()
    assert evaluate.main(["--run", str(out), "--metrics", "memorization", "--num-samples", "50", "--seed", "3"]) == 0
    assert "also keeps from earlier evaluations of step 20: reconstruction_mse" in capsys.readouterr().out
    both = json.loads((out / "eval.json").read_text())
    assert both["step"] == 20 and both["metrics"]["reconstruction_mse"] == report["metrics"]["reconstruction_mse"]
    assert both["settings"]["reconstruction_mse"] == {"metric": "reconstruction", "num_samples": None, "seed": 0,
                                                      "batch_size": 250}
    assert both["settings"]["memorization_median_ratio"] == {"metric": "memorization", "num_samples": 50, "seed": 3,
                                                             "batch_size": 250}
    assert both["other_evaluations"] == [{key: value for key, value in at_10.items() if key != "other_evaluations"}]


def test_eval_json_keeps_metrics_of_the_same_checkpoint_and_data_only():
    def report(step, data, metrics, num_samples=None, **extra):
        return {"step": step, "data": data, "num_samples": num_samples, "seed": 0, "metrics": metrics,
                "settings": {name: {"num_samples": num_samples, "seed": 0} for name in metrics}, **extra}

    assert evaluation.with_earlier_reports(report(5, "a", {"x": 1.0}), None) == report(5, "a", {"x": 1.0})
    old = report(5, "a", {"fid": 9.0, "x": 1.0}, num_samples=1000)
    del old["settings"]  # an eval.json written before per-metric settings: the report's own apply
    new = evaluation.with_earlier_reports(report(5, "a", {"x": 2.0}), old)
    assert new["metrics"] == {"fid": 9.0, "x": 2.0} and "other_evaluations" not in new
    assert new["settings"] == {"fid": {"num_samples": 1000, "seed": 0}, "x": {"num_samples": None, "seed": 0}}
    other_data = evaluation.with_earlier_reports(report(5, "b", {"x": 3.0}), new)
    assert other_data["metrics"] == {"x": 3.0} and other_data["other_evaluations"] == [new]


def test_a_metric_asked_for_again_replaces_its_earlier_figures_also_when_it_fails():
    """pr asked for again with too few samples failed, and eval.json went on listing the precision
    and recall of the earlier evaluation beside the new report's other figures."""
    def report(metrics, failed=None):
        settings = {key: {"metric": metric, "num_samples": 100, "seed": 0} for metric, keys in metrics.items()
                    for key in keys}
        values = {key: value for keys in metrics.values() for key, value in keys.items()}
        return {"step": 5, "data": "d", "num_samples": 100, "seed": 0, "metrics": values, "settings": settings,
                **({"failed": failed} if failed else {})}

    old = report({"pr": {"precision": 0.5, "recall": 0.4, "pr_real_images": 100.0}, "fid": {"fid": 30.0},
                  "probe": {"probe_1nn": 0.9, "probe_features_1nn": 0.95}})
    new = evaluation.with_earlier_reports(report({"fid": {"fid": 20.0}, "probe": {"probe_1nn": 0.91}},
                                               failed={"pr": "needs --num-samples 4 or more"}), old)
    # pr failed: its earlier figures go; the probe, computed again without its features figure: that one goes too
    assert new["metrics"] == {"fid": 20.0, "probe_1nn": 0.91} and set(new["settings"]) == {"fid", "probe_1nn"}
    stopped = evaluation.with_earlier_reports(report({"fid": {"fid": 20.0}}, failed={"pr": evaluation.INTERRUPTED}), old)
    assert stopped["metrics"] == {"precision": 0.5, "recall": 0.4, "pr_real_images": 100.0, "fid": 20.0,
                                  "probe_1nn": 0.9, "probe_features_1nn": 0.95}  # interrupted: not computed, kept


def test_precision_and_recall_with_too_few_samples_is_one_error_line_before_any_image_is_drawn():
    from alae_tf.errors import ConfigError
    from alae_tf.metrics import generation
    from alae_tf.metrics.context import EvalContext

    for count in (2, 3):  # its k = 3 nearest neighbours need 4 images per set; nothing is drawn from the None sampler
        with pytest.raises(ConfigError, match=rf"k = 3\): pass --num-samples 4 or more, got {count}$"):
            generation.precision_and_recall(EvalContext(sampler=None, config=None, data=None, num_samples=count))


def test_the_table_gives_image_counts_as_whole_numbers():
    table = evaluation.markdown_table({"step": 5, "run": "r", "metrics": {"fid": 12.34567, "fid_real_images": 50000.0}})
    assert table.splitlines()[-2:] == ["| fid | 12.3457 |", "| fid_real_images | 50000 |"]


def test_jit_auto_is_decided_at_the_start_and_recorded_in_the_run(small_config, tmp_path, capsys):
    """jit: auto (the MLP presets') is XLA on one CPU device, off under --strategy mirrored (not
    refused as an explicit --jit is); the run's config.yaml records the decision, --no-jit overrides it."""
    auto = tmp_path / "auto.yaml"
    auto.write_text(small_config.read_text().replace("log_every: 5}", "log_every: 5, jit: auto}"))
    for out, flags, jit in (("one", [], True), ("off", ["--no-jit"], False)):
        assert run_train(auto, tmp_path / out, "--steps", "10", *flags) == 0
        assert f"1 replica(s), precision none, jit {jit}" in capsys.readouterr().out
        assert load_config_file(tmp_path / out / "config.yaml").train.jit is jit
    # A process of its own: a second MirroredStrategy here would share collective keys with the tests'
    # (and that process has one CPU device: one replica).
    two = subprocess.run([sys.executable, "-m", "alae_tf.train", "--config", str(auto), "--out", str(tmp_path / "two"),
                          "--steps", "10", "--strategy", "mirrored", "--verbose", "0"],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "1 replica(s), precision none, jit False" in two.stdout
    assert load_config_file(tmp_path / "two" / "config.yaml").train.jit is False

    # Resumed in bf16 by its directory alone (no config file to decide auto again), the float32
    # decision stays, with a note on how to drop it (said before a finished run says so: no step to compile).
    resume = ["--out", str(tmp_path / "one"), "--verbose", "0", "--mixed-precision", "bf16"]
    assert train.main(resume + ["--steps", "10"]) == 0
    captured = capsys.readouterr()
    assert "precision bf16, jit True" in captured.out
    assert "(precision bf16) jit: auto chooses no XLA, the faster here (README, Results): add --no-jit" in captured.err
    assert train.main(resume + ["--steps", "12", "--no-jit"]) == 0
    captured = capsys.readouterr()
    assert "precision bf16, jit False" in captured.out and "--no-jit" not in captured.err


def test_a_finished_run_on_a_read_only_disk_says_so_and_one_with_steps_left_is_refused(small_config, ten_step_run,
                                                                                         capsys, monkeypatch):
    """The same command on an archived (read-only) finished run was refused: the lock file it
    opens for writing came before the check that nothing is left to train."""
    from alae_tf import run_lock

    lock_file = RunDir(ten_step_run).lock_file

    def read_only_open(path, *args, **kwargs):
        if Path(path) == lock_file:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(run_lock, "open", read_only_open, raising=False)
    assert run_train(small_config, ten_step_run, "--steps", "10") == 0
    assert "already trained for 10 steps (target 10)" in capsys.readouterr().out
    assert run_train(small_config, ten_step_run, "--steps", "20") == 2
    assert capsys.readouterr().err == f"error: cannot write the run directory {ten_step_run} (Read-only file system)\n"


def test_resuming_with_a_different_batch_size_is_refused(small_config, ten_step_run, capsys):
    assert run_train(small_config, ten_step_run, "--batch-size", "64") == 2
    assert "trained with batch_size=128" in capsys.readouterr().err


def test_resuming_a_run_with_per_level_batch_sizes_refuses_a_batch_size_that_would_replace_them(tmp_path):
    """mnist_style32's config.yaml keeps batch_size: 64 unused beside its per-level sizes: `--batch-size
    64` passed as the same value and then trained every level at 64 (128 before)."""
    config = load_preset("mnist_style32")
    assert config.train.batch_size == 64 and config.train.level_batch_sizes == [128, 128, 128, 64]
    args = argparse.Namespace(preset=None, config=None)
    for value in (64, 128):
        with pytest.raises(ConfigError, match=re.escape(f"trained with batch sizes [128, 128, 128, 64] per level; "
                                                        f"resuming with --batch-size {value} (for a run converted")):
            training.check_same_experiment(args, config, {"train": {"batch_size": value}, "data": {}}, RunDir(tmp_path))
    config.train.level_batch_sizes = [32, 32, 32, 32]  # every level's already
    training.check_same_experiment(args, config, {"train": {"batch_size": 32}, "data": {}}, RunDir(tmp_path))


def test_resuming_with_the_preset_a_changed_copy_names_is_refused(tmp_path):
    """A 32x32 run trained from a copy of folder64.yaml (which keeps `preset: folder64`) resumed
    with --preset folder64 as if it were that preset (an operator audit, 2026-12-06); settings
    that flags change are no other model."""
    args = argparse.Namespace(preset="folder64", config=None)
    copy = load_preset("folder64")
    copy.model.image_shape, copy.model.max_channels = [32, 32, 3], 16
    with pytest.raises(ConfigError, match=re.escape("config.yaml names preset folder64 but differs from it in "
                                                    "model.image_shape, model.max_channels (a --config copy of it?)")):
        training.check_same_experiment(args, copy, {"train": {}, "data": {}}, RunDir(tmp_path))
    same = load_preset("folder64")
    same.train.seed, same.train.steps = 7, 100  # as --seed 7 --steps 100 made it
    training.check_same_experiment(args, same, {"train": {}, "data": {}}, RunDir(tmp_path))


def test_resuming_as_another_experiment_is_refused_and_a_no_op_changes_nothing(small_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_train(small_config, run, "--steps", "10", "--batch-size", "64") == 0
    written = (run / "config.yaml").read_text()
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("hidden_dim: 64", "hidden_dim: 32").replace("log_every: 5", "log_every: 5, learning_rate: 0.001"))
    capsys.readouterr()
    for flags, message in (
        (["--config", str(other)], f"resuming with {other} (it differs in model.hidden_dim, train.batch_size, train.learning_rate)"),
        (["--preset", "tiny_style"], "trained with preset mnist_small; resuming with --preset tiny_style"),
        # fp16's loss scale is not in a float32 run's checkpoint: the restore failed in a long TensorFlow message
        (["--mixed-precision", "fp16", "--steps", "11"], "trained with mixed precision none; fp16's optimizers keep a "
                                                         "loss scale in the checkpoints that the others lack"),
    ):
        assert train.main(["--out", str(run), "--verbose", "0", *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    # The same command, or one that changes only what a resume may change, is no other experiment;
    # with no step left to train it leaves the run's config.yaml as it was.
    assert run_train(small_config, run, "--steps", "10", "--batch-size", "64", "--mixed-precision", "bf16") == 0
    assert "already trained for 10 steps" in capsys.readouterr().out
    assert (run / "config.yaml").read_text() == written


def test_an_out_that_is_a_file_is_refused_in_one_line(small_config, tmp_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("mine")
    assert run_train(small_config, out) == 2
    assert capsys.readouterr().err == f"error: --out {out} is a file, not a run directory\n"
    assert out.read_text() == "mine"


def test_a_step_whose_log_row_an_interrupt_cut_off_is_logged_before_it_is_saved(small_config, every_step_log, tmp_path,
                                                                                capsys, monkeypatch):
    """Ctrl-C between a step and its callbacks: the step was saved, the resumed run started after
    it, and its row was missing from log.csv for good."""
    from alae_tf.callbacks import TrainingMonitor

    on_step = TrainingMonitor.on_step

    def interrupted_at_step_7(self, step, logs):
        if step == 7:
            raise KeyboardInterrupt
        on_step(self, step, logs)

    def interrupted_at_once(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainingMonitor, "on_step", interrupted_at_step_7)
    run = tmp_path / "run"
    assert run_train(small_config, run, "--steps", "10", "--log-every", "1") == 130
    assert "interrupted: saved step 7" in capsys.readouterr().out
    # Interrupted again before its first step (it raised AttributeError: no model in the callbacks
    # yet); step 7's row is not written twice.
    monkeypatch.setattr(training, "fit_schedule", interrupted_at_once)
    assert run_train(small_config, run, "--steps", "10", "--log-every", "1") == 130
    assert "interrupted before training began" in capsys.readouterr().err
    monkeypatch.undo()
    assert run_train(small_config, run, "--steps", "10", "--log-every", "1") == 0
    rows = (run / "log.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == list(range(1, 11))
    straight = every_step_log  # uninterrupted
    assert straight[0] == rows[0]
    np.testing.assert_allclose([float(v) for v in rows[7].split(",")], [float(v) for v in straight[7].split(",")], rtol=1e-5)


@pytest.mark.parametrize("signals, at_once, code", [
    ([signal.SIGINT], False, 130),
    ([signal.SIGTERM, signal.SIGTERM], False, 143),  # a scheduler may repeat it
    ([signal.SIGINT, signal.SIGINT], True, 130),  # a second Ctrl-C stops sooner
    ([signal.SIGTERM, signal.SIGINT], True, 143),
    ([signal.SIGHUP, signal.SIGHUP], False, 129),  # the terminal hung up (here: only the signal)
])
def test_a_signal_lets_the_step_and_its_callbacks_finish_then_saves_it(signals, at_once, code, small_config, tmp_path,
                                                                       capfd, monkeypatch):
    """Python raised KeyboardInterrupt wherever the trainer was, TensorFlow's eager dispatch in the
    grids included, and about one stop in 60 died of SIGSEGV instead of saving. A signal now waits
    for the end of the step: the eager ops after it run, the step is logged, then saved."""
    from alae_tf.callbacks import TrainingMonitor

    on_step, ran_on = TrainingMonitor.on_step, []

    def signalled_at_step_7(self, step, logs):
        if step == 7:
            for signum in signals:
                os.kill(os.getpid(), signum)  # Python runs the handler before the next line
            ran_on.append(float(tf.reduce_sum(tf.ones([3]))))
        on_step(self, step, logs)

    monkeypatch.setattr(TrainingMonitor, "on_step", signalled_at_step_7)
    run = tmp_path / "run"
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert run_train(small_config, run, "--steps", "10", "--log-every", "1") == code
    captured = capfd.readouterr()  # the handler writes to file descriptor 2
    assert "interrupted: saved step 7" in captured.out
    name = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}[signals[0]]
    sooner = "Ctrl-C again stops sooner" if name == "Ctrl-C" else "a SIGINT (Ctrl-C) stops sooner"  # SIGTERM again: nothing
    assert captured.err.count(f"{name}: stopping after the step under way, then saving it ({sooner})\n") == 1
    assert ran_on == ([] if at_once else [3.0])
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-7")
    rows = (run / "log.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == list(range(1, 8))  # step 7 logged once, either way
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers


@pytest.mark.parametrize("as_command", [True, False])
def test_a_stopping_command_ignores_repeated_signals_until_it_exits(as_command, monkeypatch):
    """Restored on leaving the training loop, the default SIGTERM killed a command that was exiting
    after a SIGTERM (-15 instead of 143: a scheduler repeats it) while TensorFlow released the
    trainer's objects. An app that calls the trainer gets its own handlers back."""
    from alae_tf import callbacks

    monkeypatch.setattr(callbacks, "started_as_command", lambda: as_command)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with callbacks.StopOnSignal() as stop:
            stop.handle(signal.SIGTERM, None)
        after = {signum: signal.getsignal(signum) for signum in before}
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert after == ({signum: signal.SIG_IGN for signum in before} if as_command else before)
    with callbacks.StopOnSignal() as idle:  # no signal: the handlers come back in either case
        assert signal.getsignal(signal.SIGTERM) == idle.handle
    assert {signum: signal.getsignal(signum) for signum in before} == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_a_signal_the_trainer_was_started_ignoring_stays_ignored(signum, small_config, tmp_path, monkeypatch):
    """A shell starts a script's background job (`train ... &`) with Ctrl-C ignored, so that a
    Ctrl-C meant for the script's foreground leaves it running; `nohup` ignores SIGHUP, so that
    closing the terminal leaves it running."""
    from alae_tf.callbacks import TrainingMonitor

    on_step = TrainingMonitor.on_step

    def signalled_at_step_7(self, step, logs):
        if step == 7:
            os.kill(os.getpid(), signum)
        on_step(self, step, logs)

    monkeypatch.setattr(TrainingMonitor, "on_step", signalled_at_step_7)
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        assert run_train(small_config, tmp_path / "run", "--steps", "10") == 0
        assert signal.getsignal(signum) is signal.SIG_IGN
    finally:
        signal.signal(signum, previous)
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-10")


def test_an_out_that_holds_other_files_is_refused_and_left_alone(small_config, tmp_path, capsys):
    """A slip such as --out . or --out runs scattered a new run among the folder's files."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run_train(small_config, out) == 2
    assert capsys.readouterr().err == (f"error: --out {out} is not a run (no config.yaml) and holds other files "
                                       "(notes.txt); pass a new or empty directory\n")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_preset_and_a_config_file_together_are_refused(small_config, tmp_path, capsys):
    """--preset was silently ignored beside --config."""
    with pytest.raises(SystemExit) as exit_info:
        run_train(small_config, tmp_path / "run", "--preset", "tiny_style")
    assert exit_info.value.code == 2 and "argument --preset: not allowed with argument --config" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluate_prints_its_results_before_a_failed_write(ten_step_run, capsys):
    run = ten_step_run
    (run / "eval.json").mkdir()  # eval.json cannot be written
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction"]) == 2
    captured = capsys.readouterr()
    assert "| reconstruction_mse |" in captured.out
    assert captured.err.startswith(f"error: cannot write {run / 'eval.json'} (") and "the results are the table above" in captured.err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--steps", "0"], "train.steps must be positive"),
        (["--batch-size", "65536"], "larger than the training set (60000 images)"),
        (["--data-source", "idx", "--data-path", "/nonexistent/mnist"], "/nonexistent/mnist"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(tmp_path, capsys, flags, message):
    assert train.main(["--out", str(tmp_path / "run"), "--verbose", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_evaluate_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert evaluate.main(["--run", str(tmp_path)]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert evaluate.main(["--run", str(tmp_path), "--metrics", "fid,sharpness"]) == 2
    assert "unknown metric(s) sharpness" in capsys.readouterr().err
    assert evaluate.main(["--run", str(tmp_path), "--seed", "-1"]) == 2  # accepted, or a traceback at 2^63
    assert "--seed must lie in [0, 2^31), got -1" in capsys.readouterr().err
    (tmp_path / "log.csv").write_text("step\n")
    assert evaluate.main(["--run", str(tmp_path / "log.csv")]) == 2  # it said "no such directory"
    assert "log.csv: a file, not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["alae_tf.train", "alae_tf.evaluate"])
def test_help_exits_0(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage: python -m " + module in result.stdout
    if module == "alae_tf.train":  # the settings without a flag were nowhere in it
        text = " ".join(result.stdout.split())
        assert "train.adversarial_loss: softplus, minimax, least_squares, hinge, wasserstein, f_kl," in text
        assert "train.gradient_penalty (ALAE's): r1, r2, wgan_gp, dragan, none" in text
        assert "the baselines AAE, BiGAN and VAE-GAN take all but wasserstein, ebgan and began; AE, VAE and AVB none" in text


def test_a_second_trainer_is_refused_sigterm_saves_and_the_same_command_resumes(small_config, tmp_path, capsys):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "alae_tf.train", "--config", str(small_config), "--out", str(out),
               "--verbose", "0", "--steps", "100000", "--checkpoint-every", "100000"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while not (out / "log.csv").exists() and time.time() < deadline:  # first log line at step 5
            time.sleep(0.2)
        # The same command again while it trains: refused before it reads or writes anything.
        config_before = (out / "config.yaml").read_text()
        assert run_train(small_config, out, "--steps", "6") == 2
        err = capsys.readouterr().err
        assert err == (f"error: {out} is being trained by pid {process.pid} on {socket.gethostname()}; wait for it to "
                       "finish, or stop it (Ctrl-C saves a checkpoint) and re-run this command to resume\n")
        assert (out / "config.yaml").read_text() == config_before and process.poll() is None
        time.sleep(1.0)
        while process.poll() is None:  # as a scheduler may: SIGTERM again and again until it exits (once,
            process.send_signal(signal.SIGTERM)  # one during TensorFlow's teardown killed it: -15, not 143)
            time.sleep(0.02)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # a failed check above: no trainer left running
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr[-2000:]  # 128 + SIGTERM, as a shell reports it (130 is Ctrl-C's)
    saved = int(stdout.split("interrupted: saved step ")[1].split()[0])
    assert saved >= 5
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith(f"ckpt-{saved}")
    assert run_train(small_config, out, "--steps", str(saved + 3)) == 0
    reader = tf.train.load_checkpoint(str(out / "checkpoints"))
    step_key = next(k for k in reader.get_variable_to_shape_map() if "trained_steps" in k)
    assert int(reader.get_tensor(step_key)) == saved + 3


def test_a_hang_up_of_its_terminal_saves_the_step_under_way_and_the_same_command_resumes(small_config, tmp_path, capsys):
    """An SSH session that dropped (or a closed terminal window) killed the trainer by SIGHUP: the
    steps since the last checkpoint were lost (up to --checkpoint-every, 1000 by default). With
    SIGHUP taken, the progress bar's next write to the hung-up terminal failed (EIO) and ended the
    run with an OSError, again without a save."""
    out = tmp_path / "run"
    command = ["-m", "alae_tf.train", "--config", str(small_config), "--out", str(out),
               "--steps", "100000", "--checkpoint-every", "100000"]  # --verbose as on a terminal: the bar
    with open(tmp_path / "stderr.txt", "w") as stderr:
        terminal = Terminal(command, stderr=stderr, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        terminal.read_until(lambda: (out / "log.csv").exists(), 120)  # first log row at step 5
        assert b"loss_lae" in terminal.read_until(lambda: False, 1.0)  # the bar was drawn on the terminal
        terminal.hang_up()
        terminal.process.wait(timeout=120)
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
            terminal.process.wait()
    errors = (tmp_path / "stderr.txt").read_text()
    assert terminal.process.returncode == 129, errors[-2000:]  # 128 + SIGHUP, as a shell reports it
    assert "SIGHUP: stopping after the step under way, then saving it" in errors and "Traceback" not in errors
    rows = (out / "log.csv").read_text().splitlines()
    saved = int(rows[-1].split(",")[0])  # the row of the step the stop saved
    assert saved >= 5 and tf.train.latest_checkpoint(str(out / "checkpoints")).endswith(f"ckpt-{saved}")
    assert run_train(small_config, out, "--steps", str(saved + 2)) == 0
    assert f"resuming at step {saved}" in capsys.readouterr().out


def test_a_new_run_whose_directory_another_trainer_just_created_is_refused(small_config, tmp_path, capsys, monkeypatch):
    """Two new runs started at once: the directory appears after this one looked (it locks an
    existing directory at once, a new one when it creates it), and it writes nothing."""
    out = tmp_path / "run"
    open_data, held = training.open_run_images, []

    def data_while_another_trainer_starts(config, **where):
        source = open_data(config, **where)
        out.mkdir()
        other = open(out / "train.lock", "w")
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("pid 12345 on elsewhere\n")
        other.flush()
        held.append(other)
        return source

    monkeypatch.setattr(training, "open_run_images", data_while_another_trainer_starts)
    assert run_train(small_config, out) == 2
    assert capsys.readouterr().err.startswith(f"error: {out} is being trained by pid 12345 on elsewhere; ")
    assert sorted(p.name for p in out.iterdir()) == ["train.lock"]
    held[0].close()
    monkeypatch.undo()
    assert run_train(small_config, out, "--steps", "2") == 0  # released: the next command trains


def test_a_full_disk_stops_the_run_in_one_line_naming_the_newest_checkpoint(small_config, tmp_path, capsys, monkeypatch):
    """The disk fills up during the save of step 20 (TensorFlow's error, after it wrote part of the
    checkpoint), then, in a second run, while a sample grid is written (an OSError): one error line
    that names the newest checkpoint, the part-written save removed, and the same command resumes
    once there is space. It was "error: out of memory; lower --batch-size ..." (and a traceback)."""
    out = tmp_path / "run"
    save = tf.train.CheckpointManager.save
    kept = ["checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index"]

    def one_line(step, file):
        return (f"error: no space left on the disk at step {step}, writing {file}; the newest checkpoint is "
                f"{out / 'checkpoints' / 'ckpt-10'} (step 10): free some space, then re-run the same command to resume\n")

    def part_of_a_save_then_full(number):
        """As TensorFlow's save fails on a full disk: part of the checkpoint written, then its error."""
        partial = out / "checkpoints" / f"ckpt-{number}_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate42"
        partial.parent.mkdir()
        partial.write_bytes(b"half a checkpoint")
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{{{{function_node __wrapped__SaveV2}}}} {partial}; No space left on device [Op:SaveV2]")

    def save_on_a_disk_that_fills_at_step_20(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number == 20:
            part_of_a_save_then_full(20)
        return save(manager, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_on_a_disk_that_fills_at_step_20)
    assert run_train(small_config, out, "--steps", "30") == 2
    partial = out / "checkpoints" / "ckpt-20_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate42"
    assert capsys.readouterr().err == one_line(20, partial)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == kept
    monkeypatch.undo()

    png = out / "samples" / "samples_0000020.png"
    pil_save = PIL.Image.Image.save

    def save_on_a_full_disk(image, file, *args, **kwargs):
        if Path(file).name == f"{png.name}.{os.getpid()}.partial":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as Pillow's write raises it, naming no file
        return pil_save(image, file, *args, **kwargs)

    monkeypatch.setattr(PIL.Image.Image, "save", save_on_a_full_disk)
    assert run_train(small_config, out, "--steps", "30") == 2
    assert capsys.readouterr().err == one_line(20, png)
    monkeypatch.undo()

    # Ctrl-C (or a scheduler's SIGTERM) at step 15 on a disk that is full by then: the save after it
    # fails. It said "error: out of memory; lower --batch-size ..." and left the part-written save,
    # which then kept the next command from writing its config.
    from alae_tf.callbacks import TrainingMonitor

    on_step = TrainingMonitor.on_step

    def interrupted_at_step_15(self, step, logs):
        if step == 15:
            raise KeyboardInterrupt
        on_step(self, step, logs)

    monkeypatch.setattr(TrainingMonitor, "on_step", interrupted_at_step_15)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", lambda manager, checkpoint_number=None, **kwargs:
                        part_of_a_save_then_full(checkpoint_number))
    assert run_train(small_config, out, "--steps", "30") == 2
    partial = out / "checkpoints" / "ckpt-15_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate42"
    assert capsys.readouterr().err == one_line(15, partial)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == kept
    monkeypatch.undo()

    assert run_train(small_config, out, "--steps", "30") == 0
    assert "resuming at step 10" in capsys.readouterr().out
    assert png.is_file() and (out / "checkpoints" / "ckpt-30.index").is_file()


def test_output_to_a_file_gets_plain_progress_lines(small_config, tmp_path, capsys):
    """Without --verbose, output that is not a terminal (here pytest's capture; nohup, a scheduler's
    log file) gets one plain line per --log-every steps instead of Keras's bar, which redraws itself
    with backspaces and colour codes (~100 kB of them per 300 MNIST steps)."""
    assert train.main(["--config", str(small_config), "--out", str(tmp_path / "run"), "--steps", "12", "--log-every", "5"]) == 0
    out = capsys.readouterr().out
    assert not set(out) & {"\x1b", "\b", "\r"}
    lines = [line.split("  ") for line in out.splitlines() if line.startswith("step ")]
    assert [fields[0] for fields in lines] == ["step 5/12", "step 10/12", "step 12/12"]
    for fields in lines:
        assert [f.split()[0] for f in fields[1:5]] == ["loss_d", "loss_g", "loss_lae", "r1"]
        assert all(np.isfinite(float(f.split()[1])) for f in fields[1:5])
        assert fields[5].endswith(" steps/s") and float(fields[5].split()[0].replace(",", "")) > 0 and fields[6].startswith("ETA ")
    assert lines[-1][6] == "ETA 0:00:00"

    # --verbose 1, Keras's bar: the losses, without the divergence flag ("nonfinite: 0.0000e+00").
    assert train.main(["--out", str(tmp_path / "run"), "--steps", "14", "--verbose", "1"]) == 0
    out = capsys.readouterr().out
    assert "resuming at step 12" in out and "loss_d: " in out and "r1: " in out and "nonfinite" not in out


def test_batch_must_split_evenly_over_replicas_and_fit_the_data():
    config = load_preset("tiny_style")  # per-level batch sizes
    phase = phases(config)[-1]
    training.check_batch_size(phase, 60000, 2)
    with pytest.raises(training.ConfigError, match=rf"the batch size {phase.batch_size} \(level {phase.level}, "
                       rf"{phase.resolution}x{phase.resolution}\) does not split evenly over 3 replicas"):
        training.check_batch_size(phase, 60000, 3)
    with pytest.raises(training.ConfigError, match=r"larger than the training set \(5 images\); pass a smaller --batch-size"):
        training.check_batch_size(phase, 5, 1)
    with pytest.raises(training.ConfigError, match=r"larger than the training set \(1 image\); pass"):
        training.check_batch_size(phase, 1, 1)
    # A run with a checkpoint keeps its batch sizes (a resume refuses --batch-size): the advice says what can change.
    with pytest.raises(training.ConfigError) as refused:
        training.check_batch_size(phase, 5, 1, trained=True)
    assert str(refused.value).endswith(f"larger than the training set (5 images); train on at least {phase.batch_size} "
                                       "images; this run keeps the batch sizes it was trained with (its step counter "
                                       "counts batches): train a new run (another --out) with a smaller --batch-size, "
                                       "or, for a run converted from an official checkpoint, convert it again with "
                                       "--batch-size"), refused.value
    with pytest.raises(training.ConfigError, match=r"over 3 replicas; train on a number of replicas that divides it; "
                       r"this run keeps"):
        training.check_batch_size(phase, 60000, 3, trained=True)


def test_batch_size_flag_sets_every_levels_batch():
    args = train.parse_args(["--preset", "tiny_style", "--batch-size", "4", "--out", "unused"])
    config = load_preset("tiny_style")
    assert config.train.level_batch_sizes and set(config.train.level_batch_sizes) != {4}
    training.apply_overrides(config, training.requested_overrides(args))
    assert config.train.level_batch_sizes == [] and [p.batch_size for p in phases(config)] == [4] * config.model.levels


def test_a_run_of_an_older_format_is_refused_with_one_line(small_config, ten_step_run, capsys):
    run = ten_step_run
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text("\n".join(line for line in config.splitlines() if not line.startswith("format:")))
    assert run_train(small_config, run, "--steps", "14") == 2
    assert evaluate.main(["--run", str(run)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("older alae_tf (run format 1" in line and "c715ea5" in line for line in errors)


def test_bf16_without_bf16_instructions_and_fp16_on_any_cpu_are_flagged(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\n")
    avx2 = cpu_flags(cpuinfo)
    assert avx2 == {"fpu", "sse2", "avx2", "fma"}
    assert "emulates" in precision_cpu_warning("bf16", avx2, has_gpu=False)
    assert precision_cpu_warning("bf16", avx2 | {"amx_bf16"}, has_gpu=False) is None
    assert precision_cpu_warning("bf16", avx2 | {"avx512_bf16"}, has_gpu=False) is None
    assert precision_cpu_warning("bf16", avx2, has_gpu=True) is None
    assert precision_cpu_warning("none", avx2, has_gpu=False) is None
    # fp16 had no word, on CPUs it ran slower than float32 (an audit: 4.8 against 6.6 steps/s)
    for flags in (avx2, avx2 | {"avx512_bf16"}, None):
        assert "float16 is for GPUs" in precision_cpu_warning("fp16", flags, has_gpu=False)
    assert precision_cpu_warning("fp16", avx2, has_gpu=True) is None
    assert cpu_flags(tmp_path / "missing") is None and precision_cpu_warning("bf16", None, has_gpu=False) is None


def tiny_image_folder(folder):
    """24 random 8x8 grayscale PNGs: folder data without labels for FOLDER_RUN."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


FOLDER_RUN = """
preset: tiny_folder
data: {dataset: folder}
model: {image_shape: [8, 8, 1], latent_dim: 6, mapping_layers: 2, hidden_dim: 16, disc_hidden: 6}
train: {batch_size: 8, steps: 2, checkpoint_every: 2, sample_every: 100, log_every: 1}
"""


def test_an_image_folder_that_changed_under_a_run_is_noticed_and_a_run_inside_it_refused(tmp_path, capsys):
    """Its held-out split and training order follow the file list: a resume refuses a changed
    folder (evaluate warns); and a run inside the folder would train on its own sample grids."""
    from PIL import Image

    folder = tiny_image_folder(tmp_path / "images")
    (tmp_path / "tiny.yaml").write_text(FOLDER_RUN)
    command = ["--config", str(tmp_path / "tiny.yaml"), "--data-path", str(folder), "--verbose", "0"]
    assert train.main(command + ["--out", str(folder / "run")]) == 2
    assert "is inside the image folder" in capsys.readouterr().err and not (folder / "run").exists()

    run = tmp_path / "run"
    assert train.main(command + ["--out", str(run)]) == 0
    assert (run / "data_contents.txt").read_text().startswith("24 images, ")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "zz_new.png")
    capsys.readouterr()
    assert train.main(command + ["--out", str(run), "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "the run's data changed since this run started (24 images then, 25 images now" in err
    assert "Put the data back as it was" in err and err.count("\n") == 1
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction"]) == 0
    assert "warning: the run's data changed" in capsys.readouterr().err
    # held-out:N of edit and project is drawn from the folder as it is now: they said nothing
    from alae_tf import edit, project

    assert edit.main(["mix", "--run", str(run), "--sources", "held-out:1", "--destinations", "held-out:1",
                      "--out-dir", str(tmp_path / "edits")]) == 0
    assert "warning: the run's data changed since this run started (24 images then, 25 images now" in capsys.readouterr().err
    assert project.main(["--run", str(run), "--images", "held-out:1", "--steps", "1", "--out-dir", str(tmp_path / "p")]) == 0
    assert "held-out:N may select images the run trained on" in capsys.readouterr().err
    assert project.main(["--run", str(run), "--images", str(folder / "00.png"), "--steps", "1", "--out-dir", str(tmp_path / "p")]) == 0
    assert "warning" not in capsys.readouterr().err  # no held-out:N, nothing to warn of
    (folder / "zz_new.png").unlink()
    assert train.main(command + ["--out", str(run), "--steps", "4"]) == 0


def test_an_image_damaged_during_training_saves_the_last_step_in_one_line_and_the_run_resumes(tmp_path, capfd, monkeypatch):
    """The reader's DataError reaches the trainer inside a TensorFlow error: it was a traceback,
    exit 1, the steps since the last checkpoint lost, and advice ("restore or delete it") whose
    second half a resume then refused (the folder changed). Then TensorFlow still logged the
    reader's Python stack from each reader thread that met the file (~200 lines) before the error."""
    import re

    from alae_tf.data import stores

    folder = tiny_image_folder(tmp_path / "images")
    (tmp_path / "tiny.yaml").write_text(FOLDER_RUN)
    run = tmp_path / "run"
    command = ["--config", str(tmp_path / "tiny.yaml"), "--data-path", str(folder), "--verbose", "0", "--out", str(run),
               "--steps", "40", "--checkpoint-every", "100"]
    load_square, reads = stores.load_square, []

    def load_square_of_a_file_damaged_after_100_reads(path, *args):
        reads.append(path)
        if len(reads) > 100 and path.name == "05.png":
            raise OSError("cannot identify image file")  # what PIL says of a file overwritten with text
        return load_square(path, *args)

    monkeypatch.setattr(stores, "load_square", load_square_of_a_file_damaged_after_100_reads)
    assert train.main(command) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) <= 3, err  # TensorFlow's "rendezvous is aborting" + its node
    err = err.splitlines(keepends=True)[-1]
    found = re.fullmatch(r"error: (\S+): could not be decoded although it was readable when the dataset was opened "
                         r"\(.+\); put it back as it was \(a run's folder cannot change: its held-out split would\), "
                         r"or train a new run on the folder as it is now; saved step (\d+) to (\S+): once the data is "
                         r"readable again, re-run the same command to resume\n", err)
    assert found and found[1] == str(folder / "05.png") and found[3] == str(run / "checkpoints"), err
    step = int(found[2])
    assert 0 < step < 40 and (run / "checkpoints" / f"ckpt-{step}.index").is_file()
    assert (run / "log.csv").read_text().splitlines()[-1].startswith(f"{step},")  # the saved step is logged
    monkeypatch.undo()  # the file is back
    assert train.main(command) == 0
    assert f"resuming at step {step}" in capfd.readouterr().out


def test_the_reader_s_message_comes_through_tensorflow_as_written(tmp_path, monkeypatch):
    """TensorFlow prints the failed assertion's string C-escaped (a\\'b, \\t); the error line
    gives the reader's message as it was, any file name included."""
    from alae_tf.data import stores

    path = tmp_path / "a'b \"ré\" [1]\tü.png"
    monkeypatch.setattr(stores, "load_square", lambda *args: (_ for _ in ()).throw(OSError("truncated")))
    read = stores.FolderStore([path], 4, 1).tensor_reader(4)
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        list(tf.data.Dataset.range(1).map(read))
    with pytest.raises(stores.DataError) as expected:
        stores.FolderStore([path], 4, 1).read_one(0, 4)
    assert training.unreadable_data(caught.value) == str(expected.value)


def test_a_run_without_labels_evaluates_what_it_can(tmp_path, capsys, monkeypatch):
    """Folder data has no class labels: the default metrics are then reconstruction alone, and a
    probe asked for is an error that costs the other metrics nothing (they are computed and kept)."""
    folder = tiny_image_folder(tmp_path / "images")
    (tmp_path / "tiny.yaml").write_text(FOLDER_RUN)
    run = tmp_path / "run"
    assert train.main(["--config", str(tmp_path / "tiny.yaml"), "--data-path", str(folder), "--out", str(run), "--verbose", "0"]) == 0
    capsys.readouterr()

    assert evaluate.main(["--run", str(run)]) == 0
    assert "metrics: reconstruction (the default for data without class labels)" in capsys.readouterr().out
    assert list(json.loads((run / "eval.json").read_text())["metrics"]) == ["reconstruction_mse"]

    (run / "eval.json").unlink()
    assert evaluate.main(["--run", str(run), "--metrics", "probe,reconstruction"]) == 2
    captured = capsys.readouterr()
    assert "error: probe: probe needs class labels" in captured.err and "error: not computed: probe" in captured.err
    report = json.loads((run / "eval.json").read_text())
    assert list(report["metrics"]) == ["reconstruction_mse"] and list(report["failed"]) == ["probe"]
    assert "| reconstruction_mse |" in captured.out

    assert evaluate.main(["--run", str(run), "--metrics", "probe_codes"]) == 2
    assert "error: none of the metrics could be computed (probe_codes)" in capsys.readouterr().err

    # Ctrl-C during a metric: the ones done are written, the rest named, exit 130.
    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(evaluation.METRICS, "kid", evaluation.METRICS["kid"]._replace(compute=interrupted))
    (run / "eval.json").unlink()
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction,kid,fid"]) == 130
    report = json.loads((run / "eval.json").read_text())
    assert list(report["metrics"]) == ["reconstruction_mse"] and report["failed"] == {"kid": "interrupted", "fid": "interrupted"}

    # kde_nll on a folder's few held-out images (it chose sigma on the first 1,000 and scored none:
    # a numpy traceback that lost the metrics done before it); a metric that fails unforeseen costs
    # the others nothing either.
    (run / "eval.json").unlink()
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction,kde_nll", "--num-samples", "20"]) == 0
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    assert np.isfinite(metrics["kde_nll"]) and "kde_nll_standard_error" not in metrics  # one image scored: no spread (was 0.0)
    out = capsys.readouterr().out
    assert "kde_nll scored one image: no standard error" in out
    assert "kde_nll from 20 generated images: a Parzen window's NLL falls as its sample grows (papers use 10,000)" in out

    # SIGTERM (a scheduler's stop, or timeout's) during a metric: as Ctrl-C, exit 143 (it killed
    # evaluate before, losing the metrics done).
    stop_by = [signal.SIGTERM]

    def stopped(ctx):
        assert signal.getsignal(stop_by[0]) not in (signal.SIG_DFL, None), "no handler during the metrics"
        os.kill(os.getpid(), stop_by[0])

    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setitem(evaluation.METRICS, "kid", evaluation.METRICS["kid"]._replace(compute=stopped))
    (run / "eval.json").unlink()
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction,kid,fid"]) == 143
    assert "stopped (SIGTERM) during kid" in capsys.readouterr().err
    report = json.loads((run / "eval.json").read_text())
    assert list(report["metrics"]) == ["reconstruction_mse"]
    assert report["failed"] == {"kid": "stopped (SIGTERM)", "fid": "stopped (SIGTERM)"}
    assert signal.getsignal(signal.SIGTERM) == handler
    # stopped during the first metric: an interruption, not "error: none of the metrics could be computed";
    # SIGHUP (the terminal hung up; it killed evaluate) as SIGTERM, 129
    (run / "eval.json").unlink()
    stop_by[0] = signal.SIGHUP
    assert evaluate.main(["--run", str(run), "--metrics", "kid,reconstruction"]) == 129
    err = capsys.readouterr().err
    assert "stopped (SIGHUP) during kid" in err and err.endswith("\nstopped (SIGHUP) before any metric was done; nothing written\n")
    assert "error" not in err and not (run / "eval.json").exists()

    def defect(ctx):
        raise RuntimeError("a defect")

    monkeypatch.setitem(evaluation.METRICS, "kid", evaluation.METRICS["kid"]._replace(compute=defect))
    assert evaluate.main(["--run", str(run), "--metrics", "kid,reconstruction"]) == 2
    assert "error: kid failed (RuntimeError: a defect); the other metrics go on" in capsys.readouterr().err
    report = json.loads((run / "eval.json").read_text())
    assert list(report["metrics"]) == ["reconstruction_mse"] and report["failed"] == {"kid": "RuntimeError: a defect"}


def test_reconstruction_of_a_folder_that_holds_no_image_out_is_one_error_line(tmp_path, capsys):
    """A folder of fewer than 10 images holds none out: reconstruction was a ZeroDivisionError."""
    folder = tiny_image_folder(tmp_path / "images")
    for extra in sorted(folder.iterdir())[9:]:
        extra.unlink()
    (tmp_path / "tiny.yaml").write_text(FOLDER_RUN)
    run = tmp_path / "run"
    assert train.main(["--config", str(tmp_path / "tiny.yaml"), "--data-path", str(folder), "--out", str(run), "--verbose", "0"]) == 0
    capsys.readouterr()
    assert evaluate.main(["--run", str(run), "--metrics", "reconstruction"]) == 2
    err = capsys.readouterr().err
    assert "error: reconstruction: reconstruction needs held-out images and this run's data holds none out" in err
    assert "Traceback" not in err and "ZeroDivisionError" not in err


def test_a_relative_data_path_is_kept_absolute_and_a_config_files_resumable_settings_apply(tmp_path, monkeypatch):
    """A run made with --data-path images could not be evaluated or resumed from another folder
    (config.yaml kept "images"); resumed with a --config file asking for more steps and other
    intervals, the file's values were ignored ("already trained for 2 steps")."""
    folder = tiny_image_folder(tmp_path / "images")
    (tmp_path / "first.yaml").write_text(FOLDER_RUN)
    (tmp_path / "longer.yaml").write_text(FOLDER_RUN.replace("steps: 2, checkpoint_every: 2", "steps: 4, checkpoint_every: 4"))
    monkeypatch.chdir(tmp_path)
    assert train.main(["--config", "first.yaml", "--data-path", "images", "--out", "run", "--verbose", "0"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["path"] == str(folder)

    monkeypatch.chdir(tmp_path / "run")  # elsewhere: the data is still found
    assert train.main(["--config", str(tmp_path / "longer.yaml"), "--out", ".", "--verbose", "0"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["steps"] == 4 and saved["train"]["checkpoint_every"] == 4
    steps = [int(row.split(",")[0]) for row in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4]

    # A run whose config.yaml holds a relative path (alae_tf before 2026-12-04): from another folder
    # a resume trained on whatever that path named there, and wrote it into the run for good.
    saved["data"]["path"] = "../images"
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    (tmp_path / "elsewhere" / "cwd").mkdir(parents=True)
    other = tiny_image_folder(tmp_path / "elsewhere" / "images")
    monkeypatch.chdir(tmp_path / "elsewhere" / "cwd")
    assert other.is_dir() and train.main(["--out", str(tmp_path / "run"), "--steps", "6", "--verbose", "0"]) == 2
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["path"] == "../images"
    with pytest.raises(ConfigError, match=r"data.path '../images' is relative .*: set it to the data's absolute path"):
        load_run(tmp_path / "run")  # evaluate, export, edit and project read it so


def test_train_main_leaves_the_interpreters_precision_and_graph_options_as_it_found_them(small_config, tmp_path):
    """Called from a notebook, train.main left Keras's policy at mixed_bfloat16 and Grappler's
    remapper off for whatever the session did next (an audit)."""
    import keras

    before = tf.config.optimizer.get_experimental_options()
    assert run_train(small_config, tmp_path / "run", "--steps", "2", "--mixed-precision", "bf16") == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    after = tf.config.optimizer.get_experimental_options()
    assert {key: after[key] for key in before} == before and after.get("remapping", True) is True


def test_a_missing_data_path_is_named_as_given_and_a_moved_one_as_the_runs(tmp_path, capsys):
    """A new run with a --data-path that does not exist was told its config.yaml's data.path was "no
    longer there" and to pass the --data-path it had just passed (an audit)."""
    folder = tiny_image_folder(tmp_path / "images")
    (tmp_path / "tiny.yaml").write_text(FOLDER_RUN)
    command = ["--config", str(tmp_path / "tiny.yaml"), "--verbose", "0", "--out", str(tmp_path / "run")]
    assert train.main(command + ["--data-path", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"error: --data-path {tmp_path / 'nowhere'}: no such file or directory\n"
    assert not (tmp_path / "run").exists()

    assert train.main(command + ["--data-path", str(folder)]) == 0
    folder.rename(tmp_path / "moved")
    capsys.readouterr()
    assert train.main(command + ["--steps", "4"]) == 2  # resumed without --data-path: the run's own path is gone
    assert "the run's data (data.path in its config.yaml) is no longer there; pass --data-path DIR" in capsys.readouterr().err
    assert train.main(command + ["--steps", "4", "--data-path", str(tmp_path / "moved")]) == 0
