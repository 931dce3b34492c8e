"""benchmarks/paper_table.py without training: its rows and markdown table from hand-made eval
reports, its resume check, and the loss-ablation config files it writes."""

import json

import pytest

from alae_tf.config import load_config_file
from benchmarks import paper_table

HEADER = {
    "machine": {"cpu": "Test CPU 9000", "logical_cpus": 2, "avx512f": True, "amx_bf16": False},
    "date": "2024-01-02T03:04:05+00:00",
    "command": "python benchmarks/paper_table.py --out /tmp/x",
    "code": "abc1234+changes",
    "seed": 3,
    "steps": 20000,
    "metrics": ["probe", "reconstruction"],
}
ALL_METRICS = {name: 0.9 for name, _ in paper_table.COLUMNS if name.endswith("_accuracy")} | {"reconstruction_mse": 0.0123}


def report(step=20000, **metrics):
    return {"step": step, "metrics": metrics, "seconds": 1.0}


def table_lines(rows):
    return [line for line in paper_table.markdown_table(HEADER, rows).splitlines() if line.startswith("| ")]


def cells(line):
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_rows_of_a_complete_run_a_failed_run_and_a_run_missing_a_metric():
    partial = dict(ALL_METRICS)
    del partial["probe_features_svm_c002_accuracy"]
    rows = [
        paper_table.table_row("mnist", report(**ALL_METRICS), None, 3600.4, 400.0),
        paper_table.table_row("mnist_vae", None, "train: error: unknown preset 'mnist_vae' | see --help", 2.0, None),
        paper_table.table_row("loss_hinge", report(**partial), None, 3500.0, 390.0),
    ]
    heading, complete, failed, missing = table_lines(rows)
    assert cells(heading)[:2] == ["run", "steps"] and cells(heading)[-1] == "status"
    assert len(cells(heading)) == len(cells(complete)) == len(cells(failed)) == len(cells(missing))
    assert cells(complete) == ["mnist", "20000", *["90.00"] * 8, "0.01230", "3600", "400", "ok"]
    assert cells(failed)[0] == "mnist_vae"
    assert cells(failed)[1:-3] == ["—"] * 10 and cells(failed)[-3:-1] == ["2", "—"]
    assert cells(failed)[-1] == "failed: train: error: unknown preset 'mnist_vae' \\| see --help"
    svm_features = [heading for _, heading in paper_table.COLUMNS].index("SVM f") + 2
    assert cells(missing)[svm_features] == "—"
    assert cells(missing)[svm_features - 1] == "90.00"
    assert rows[2]["probe_features_svm_c002_accuracy"] is None and rows[1]["status"] == "failed"


def test_table_header_names_the_machine_date_and_command():
    text = paper_table.markdown_table(HEADER, [])
    assert "Test CPU 9000, 2 logical CPUs; avx512f: yes, amx_bf16: no" in text
    assert HEADER["date"] in text and f"`{HEADER['command']}`" in text
    assert "- code: abc1234+changes; seed: 3" in text  # a figure is traced to the code that made it


def test_the_code_version_is_this_checkouts_commit():
    import subprocess
    from pathlib import Path

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True)
    if head.returncode:
        pytest.skip("not a git checkout")
    assert paper_table.code_version().split("+")[0] == head.stdout.strip()


def test_the_seed_is_passed_to_train_only():
    args = paper_table.parse_args(["--out", "out", "--presets", "mnist_vae", "--seed", "4"])
    run = paper_table.planned_runs(args)[0]
    command = paper_table.train_command(run, args)
    assert command[command.index("--seed") + 1] == "4"
    assert "--seed" not in paper_table.evaluate_command(run, args)
    assert "--seed" not in paper_table.train_command(run, paper_table.parse_args(["--out", "out", "--presets", "mnist"]))


def test_written_json_has_the_same_rows(tmp_path):
    rows = [paper_table.table_row("mnist", report(reconstruction_mse=0.02), None, 10.0, 5.0)]
    table = paper_table.write_tables(tmp_path, HEADER, rows)
    assert json.loads((tmp_path / "table.json").read_text()) == table
    assert table["rows"] == rows and table["machine"] == HEADER["machine"]
    assert (tmp_path / "table.md").read_text() == paper_table.markdown_table(HEADER, rows)
    assert paper_table.previous_rows(tmp_path) == {"mnist": rows[0]}


def test_a_run_is_evaluated_again_unless_its_report_is_at_the_steps_with_the_wanted_metrics():
    wanted = ["probe", "reconstruction"]
    assert paper_table.is_evaluated(report(**ALL_METRICS), 20000, wanted)
    assert not paper_table.is_evaluated(report(step=19000, **ALL_METRICS), 20000, wanted)
    assert not paper_table.is_evaluated(report(reconstruction_mse=0.01), 20000, wanted)
    assert paper_table.is_evaluated(report(reconstruction_mse=0.01), 20000, ["reconstruction"])
    assert not paper_table.is_evaluated(None, 20000, wanted)


def test_train_seconds_add_up_over_resumes_and_stay_when_already_trained():
    def finished(*lines, seconds=10.0):
        return paper_table.Finished(0, [line + "\n" for line in lines], "", seconds)

    assert paper_table.train_seconds(finished("run: x (new run); 1 replica(s)"), 99.0) == 10.0
    assert paper_table.train_seconds(finished("run: x (resuming at step 100); 1 replica(s)"), 99.0) == 109.0
    assert paper_table.train_seconds(finished("already trained for 200 steps (target 200)"), 99.0) == 99.0
    assert paper_table.train_seconds(finished("already trained for 200 steps (target 200)"), None) is None


def test_a_run_trained_past_the_steps_is_an_error_row_not_evaluated(tmp_path, monkeypatch):
    """Its row was put in the equal-budget table at its own step, and evaluated again every call."""
    args = paper_table.parse_args(["--out", str(tmp_path), "--presets", "mnist_bigan", "--steps", "1"])
    (run,) = paper_table.planned_runs(args)
    phases = []

    def phase(run, name, command):
        phases.append(name)
        return paper_table.Finished(0, ["already trained for 2 steps (target 1); pass a larger --steps\n"], "", 0.5)

    monkeypatch.setattr(paper_table, "run_phase", phase)
    row = paper_table.measure(run, args, {})
    assert phases == ["train"] and row["status"] == "failed"
    assert row["error"] == f"train: {tmp_path / 'mnist_bigan'} is trained for 2 steps, past --steps 1: pass another --out, or --steps 2"
    assert paper_table.steps_beyond(paper_table.Finished(0, ["already trained for 1 steps (target 1)\n"], "", 0.1), 1) is None


def test_loss_config_is_the_mnist_preset_with_the_loss_set(tmp_path):
    path = paper_table.write_loss_config(tmp_path, "hinge")
    assert path == tmp_path / "loss_hinge.yaml"
    config = load_config_file(path)
    assert config.train.adversarial_loss == "hinge" and config.preset == "loss_hinge"
    assert config.model.latent_dim == 50 and config.model.backbone == "mlp"


def test_loss_runs_train_with_their_config_file(tmp_path):
    args = paper_table.parse_args(["--out", str(tmp_path), "--presets", "mnist", "--losses", "hinge,least_squares"])
    runs = paper_table.planned_runs(args)
    assert [run.name for run in runs] == ["mnist", "loss_hinge", "loss_least_squares"]
    assert runs[1].config_flags == ["--config", str(tmp_path / "loss_hinge.yaml")]
    command = paper_table.train_command(runs[1], args)
    assert command[command.index("--out") + 1] == str(tmp_path / "loss_hinge")
    assert command[command.index("--steps") + 1] == "20000"
    assert "--jit" not in command


def test_jit_is_passed_to_train_only():
    args = paper_table.parse_args(["--out", "out", "--presets", "mnist_vae", "--jit"])
    run = paper_table.planned_runs(args)[0]
    assert "--jit" in paper_table.train_command(run, args)
    assert "--jit" not in paper_table.evaluate_command(run, args)


@pytest.mark.parametrize("flags, message", [
    (["--losses", "nope"], "unknown loss(es) nope; choose from softplus"),
    (["--metrics", "fid"], "--metrics takes some of probe, probe_codes, reconstruction; got fid"),
    (["--metrics", ""], "got none"),
    (["--presets", "mnist,mnist_vea"], "unknown preset(s) mnist_vea; available: "),  # found when its turn came
])
def test_unknown_loss_or_metric_is_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as exit:
        paper_table.parse_args(["--out", "x", *flags])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


# paper_table with a stand-in for the training command: it says it started, then waits; on Ctrl-C
# it says it saved (as train does) and exits 130.
STAND_IN_TRAINING = r"""
import signal, sys, time
def stop(*_):
    print("interrupted: saved step 7; re-run the same command to resume", flush=True)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
print("run: x (new run); 1 replica(s)", flush=True)
time.sleep(60)
"""
PAPER_TABLE_WITH_STAND_IN = r"""
import sys
sys.path.insert(0, "benchmarks")
import paper_table
paper_table.train_command = lambda run, args: [sys.executable, "-c", sys.argv[1]]
sys.exit(paper_table.main(["--out", sys.argv[2], "--presets", "mnist", "--steps", "10"]))
"""


def interrupted_table(program, stand_in, tmp_path):
    """(exit code, stdout, stderr) of paper_table run by `program` with `stand_in` for one command,
    sent Ctrl-C (SIGINT to its process group, as a terminal does) once the table has passed on the
    stand-in's first line (it reads the stand-in's output by then) and a second more has gone by."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    table = subprocess.Popen([sys.executable, "-c", program, stand_in, str(tmp_path)],
                             cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    seen = []
    for line in table.stdout:  # the table flushes each line it passes on
        seen.append(line)
        if line.startswith("run: x (new run)"):
            break
    time.sleep(1)  # the training time kept is at least this
    os.killpg(table.pid, signal.SIGINT)
    out, err = table.communicate(timeout=60)
    return table.returncode, "".join(seen) + out, err


def test_ctrl_c_keeps_the_trainings_words_and_time_and_says_how_to_resume(tmp_path):
    """Ctrl-C goes to the terminal's process group: the training saves and says so, and the table
    records the time trained so far (a resume adds to it) instead of a KeyboardInterrupt traceback."""
    returncode, out, err = interrupted_table(PAPER_TABLE_WITH_STAND_IN, STAND_IN_TRAINING, tmp_path)
    assert returncode == 130 and "Traceback" not in err, err
    assert "interrupted: saved step 7; re-run the same command to resume" in out
    assert "interrupted during mnist: re-run the same command to resume" in err
    (row,) = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert row["error"] == "train: interrupted" and row["train_seconds"] >= 1  # the time until Ctrl-C, kept


STAND_IN_EVALUATION = STAND_IN_TRAINING.replace("saved step 7", "the metrics done so far are kept")
PAPER_TABLE_WITH_STAND_IN_EVALUATION = r"""
import sys
sys.path.insert(0, "benchmarks")
import paper_table
paper_table.train_command = lambda run, args: [sys.executable, "-c", "print('already trained for 10 steps (target 10)')"]
paper_table.evaluate_command = lambda run, args: [sys.executable, "-c", sys.argv[1]]
sys.exit(paper_table.main(["--out", sys.argv[2], "--presets", "mnist,mnist_vae", "--steps", "10"]))
"""


def test_ctrl_c_during_an_evaluation_keeps_every_runs_row_and_training_time(tmp_path):
    """Ctrl-C while a run was evaluated wrote a table.json of the runs measured in that invocation
    only: the earlier invocations' rows were gone, and the interrupted run's training time with them
    (a resume then showed "—")."""
    earlier = [paper_table.table_row("mnist", None, "evaluate: interrupted", 31.0, None),
               paper_table.table_row("mnist_vae", report(step=10, **ALL_METRICS), None, 40.0, 50.0)]
    paper_table.write_tables(tmp_path, HEADER, earlier)
    returncode, out, err = interrupted_table(PAPER_TABLE_WITH_STAND_IN_EVALUATION, STAND_IN_EVALUATION, tmp_path)
    assert returncode == 130 and "Traceback" not in err, err
    assert "interrupted during mnist: re-run the same command to resume" in err
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert [row["run"] for row in rows] == ["mnist", "mnist_vae"]
    assert rows[0]["error"] == "evaluate: interrupted" and rows[0]["train_seconds"] == 31.0  # already trained: kept
    assert rows[1] == earlier[1]  # not reached this time: as the earlier invocation measured it
