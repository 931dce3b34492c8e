"""The paper's MNIST comparison table: train every listed preset for the same number of steps,
probe each one, and write one markdown table and one JSON file.

    python benchmarks/paper_table.py --out runs/paper_table
    python benchmarks/paper_table.py --out runs/paper_table --presets mnist --losses hinge,least_squares

Each run is `python -m alae_tf.train` into OUT/<run> (presets with --preset; the loss ablation,
ALAE trained once per adversarial loss, with --config OUT/loss_<name>.yaml), then
`python -m alae_tf.evaluate`, which writes OUT/<run>/eval.json. Re-running the same command
resumes: train skips a run already at --steps, and a run whose eval.json is at --steps with the
wanted metrics is not evaluated again. A command that fails is recorded as failed, with its last
stderr line, and the next run goes on; the exit status is then 1.

Writes OUT/table.md and OUT/table.json (after every run, so a long job shows what is done), and
prints the JSON on the last line of stdout.
"""

import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

from alae_tf.config import ADVERSARIAL_LOSSES, available_presets, load_preset, save_config
from serving.command_line import CommandParser, folder_to_write

DEFAULT_PRESETS = "mnist,mnist_ae_l1,mnist_ae_l2,mnist_vae,mnist_aae,mnist_bigan,mnist_vaegan,mnist_avb"
DEFAULT_METRICS = "probe,reconstruction"

# (eval.json metric name, table heading), in table order.
COLUMNS = (
    ("probe_1nn_accuracy", "1-NN z"),
    ("probe_svm_c002_accuracy", "SVM z"),
    ("probe_features_1nn_accuracy", "1-NN f"),
    ("probe_features_svm_c002_accuracy", "SVM f"),
    ("probe_split50k_1nn_accuracy", "50k 1-NN z"),
    ("probe_split50k_svm_c002_accuracy", "50k SVM z"),
    ("probe_split50k_features_1nn_accuracy", "50k 1-NN f"),
    ("probe_split50k_features_svm_c002_accuracy", "50k SVM f"),
    ("reconstruction_mse", "rec. MSE"),
)
# The table's metric names each evaluate metric produces.
METRIC_COLUMNS = {
    "probe": [name for name, _ in COLUMNS if name.startswith("probe_")],
    "probe_codes": ["probe_1nn_accuracy", "probe_svm_c002_accuracy"],
    "reconstruction": ["reconstruction_mse"],
}
LEGEND = (
    "Accuracies in % on images the classifier was not fit on. z: E's 50-d codes; f: E's 1024-d features (the layer before its last "
    "linear map). Unprefixed: fit on the 60k training images, scored on the 10k test images; 50k: fit on the "
    "official code's last MNIST split of the 60k training images (its random.seed(0) shuffle, [:50000] vs "
    "[50000:]; as there, the 10k scored are among the images every model trained on, without labels). 1-NN: nearest "
    "neighbour; SVM: LinearSVC(C=0.02) on unscaled inputs (the official code's). rec. MSE: test-set "
    "reconstruction error, pixels in [0, 1]. train s / eval s: wall time of the train / evaluate commands "
    "(train: summed over resumed invocations of this script)."
)


class Run(NamedTuple):
    name: str  # also the run directory's name under --out
    config_flags: list  # --preset NAME or --config FILE


class Finished(NamedTuple):
    returncode: int
    stdout_lines: list
    last_stderr_line: str
    seconds: float


def comma_list(text: str) -> list:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv=None):
    parser = CommandParser(
        prog="python benchmarks/paper_table.py",
        description="Reproduce the paper's MNIST table: train each preset (and, with --losses, ALAE once per "
        "adversarial loss) for --steps steps, evaluate it, and write OUT/table.md and OUT/table.json. "
        "Re-run the same command to resume after a failure or an interrupt. The defaults (8 presets, 20,000 "
        "steps, the full probe) took about 6 hours of training and 45 minutes of probing on a 2-core AMD EPYC "
        "(README, the table at 20,000 steps); --steps 1000 about an hour, most of it the probe.",
        epilog=LEGEND,
    )
    parser.add_argument("--out", type=folder_to_write, required=True, help="directory for the runs (OUT/<run>) and the tables")
    parser.add_argument("--steps", type=int, default=20000, help="training steps for every run (default: 20000)")
    parser.add_argument("--presets", default=DEFAULT_PRESETS, help=f"comma-separated presets (default: {DEFAULT_PRESETS})")
    parser.add_argument("--losses", default="",
                        help="comma-separated adversarial losses for the loss ablation: the mnist preset trained "
                        f"once per loss, as run loss_<name> (default: none; names: {', '.join(ADVERSARIAL_LOSSES)})")
    parser.add_argument("--metrics", default=DEFAULT_METRICS,
                        help=f"comma-separated evaluate metrics, of {', '.join(METRIC_COLUMNS)} "
                        f"(default: {DEFAULT_METRICS}; probe takes 3-6 minutes per run on a 2-core Zen 4 EPYC (2026-12-05), probe_codes about 30 s)")
    parser.add_argument("--seed", type=int,
                        help="train every run with this seed (train --seed; default: each preset's, 0). A run "
                        "directory keeps the seed it was trained with: give each seed its own --out, then compare "
                        "the tables for the spread")
    parser.add_argument("--jit", action="store_true",
                        help="train with XLA (train --jit); the MNIST presets already do on a CPU (their train.jit: "
                        "auto), so this changes nothing there")
    parser.add_argument("--data-source", help="passed to train and evaluate (MNIST: auto, package, idx, npz or tfds)")
    parser.add_argument("--data-path", help="passed to train and evaluate (MNIST: IDX directory, mnist.npz or TFDS data_dir)")
    args = parser.parse_args(argv)
    args.presets, args.losses, args.metrics = comma_list(args.presets), comma_list(args.losses), comma_list(args.metrics)
    if args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    if not args.presets and not args.losses:
        parser.error("nothing to run: --presets and --losses are both empty")
    unknown_presets = [name for name in args.presets if name not in available_presets()]
    if unknown_presets:  # said now, not when that run's turn comes hours later
        parser.error(f"unknown preset(s) {', '.join(unknown_presets)}; available: {', '.join(available_presets())}")
    unknown_losses = [name for name in args.losses if name not in ADVERSARIAL_LOSSES]
    if unknown_losses:
        parser.error(f"unknown loss(es) {', '.join(unknown_losses)}; choose from {', '.join(ADVERSARIAL_LOSSES)}")
    unknown_metrics = [name for name in args.metrics if name not in METRIC_COLUMNS]
    if unknown_metrics or not args.metrics:
        parser.error(f"--metrics takes some of {', '.join(METRIC_COLUMNS)}; got {','.join(args.metrics) or 'none'}")
    return args


def write_loss_config(out: Path, loss: str) -> Path:
    """OUT/loss_<loss>.yaml: the mnist preset with train.adversarial_loss = loss."""
    config = load_preset("mnist")
    config.preset = f"loss_{loss}"
    config.train.adversarial_loss = loss
    path = out / f"{config.preset}.yaml"
    save_config(config, path)
    return path


def planned_runs(args) -> list:
    """The preset runs, then the loss-ablation runs (writing their config files)."""
    runs = [Run(preset, ["--preset", preset]) for preset in args.presets]
    for loss in args.losses:
        path = write_loss_config(args.out, loss)
        runs.append(Run(path.stem, ["--config", str(path)]))
    return runs


def data_flags(args) -> list:
    flags = ["--data-source", args.data_source] if args.data_source else []
    return flags + (["--data-path", args.data_path] if args.data_path else [])


def train_command(run: Run, args) -> list:
    return [sys.executable, "-m", "alae_tf.train", *run.config_flags, "--steps", str(args.steps),
            "--out", str(args.out / run.name), "--verbose", "2", *(["--jit"] if args.jit else []),
            *(["--seed", str(args.seed)] if args.seed is not None else []), *data_flags(args)]


def evaluate_command(run: Run, args) -> list:
    return [sys.executable, "-m", "alae_tf.evaluate", "--run", str(args.out / run.name),
            "--metrics", ",".join(args.metrics), *data_flags(args)]


def echo_lines(pipe, sink, kept: list) -> None:
    for line in pipe:
        sink.write(line)
        sink.flush()
        kept.append(line)


class RunInterrupted(Exception):
    """Ctrl-C during a run's training or evaluation: its table row so far (the training time spent,
    kept for the resume)."""

    def __init__(self, row: dict):
        super().__init__(row["run"])
        self.row = row


def run_streamed(command: list) -> Finished:
    """Run `command`, passing its stdout and stderr through as they come. On Ctrl-C (which the
    child gets too) its output goes on being passed until it has saved and stopped; then
    KeyboardInterrupt, with the Finished as its argument."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               errors="replace", env=env)
    stdout_lines, stderr_lines = [], []
    stderr_echo = threading.Thread(target=echo_lines, args=(process.stderr, sys.stderr, stderr_lines))
    stderr_echo.start()
    interrupted = False
    try:
        echo_lines(process.stdout, sys.stdout, stdout_lines)
    except KeyboardInterrupt:  # the child got it too: show what it says while it saves its checkpoint
        interrupted = True
        echo_lines(process.stdout, sys.stdout, stdout_lines)
    finally:
        process.wait()
        stderr_echo.join()
    last_stderr_line = next((line.strip() for line in reversed(stderr_lines) if line.strip()), "")
    finished = Finished(process.returncode, stdout_lines, last_stderr_line, time.perf_counter() - started)
    if interrupted:
        raise KeyboardInterrupt(finished)
    return finished


def run_phase(run: Run, phase: str, command: list) -> Finished:
    print(f"\n=== {run.name}: {phase}: {shlex.join(command)}")
    finished = run_streamed(command)
    outcome = "done" if finished.returncode == 0 else f"FAILED (exit {finished.returncode})"
    print(f"=== {run.name}: {phase} {outcome} in {finished.seconds:.1f} s")
    return finished


def train_seconds(trained: Finished, previous):
    """Wall time spent training the run: none this time when it was already trained, added to the
    earlier invocations' (`previous`, from the last table.json) when it resumed."""
    output = "".join(trained.stdout_lines)
    if "already trained" in output:
        return previous
    if "resuming at step" in output and previous is not None:
        return round(previous + trained.seconds, 1)
    return round(trained.seconds, 1)


def steps_beyond(trained: Finished, steps: int) -> int | None:
    """The run's step when the trainer found it already past `steps` (a run of an earlier, longer
    table in the same --out), else None."""
    found = re.search(r"already trained for (\d+) steps \(target \d+\)", "".join(trained.stdout_lines))
    return int(found[1]) if found and int(found[1]) > steps else None


def read_report(eval_file: Path):
    """The evaluate report, or None when there is none (or it was cut short)."""
    try:
        return json.loads(eval_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_evaluated(report, steps: int, metrics: list) -> bool:
    wanted = [name for metric in metrics for name in METRIC_COLUMNS[metric]]
    return report is not None and report.get("step") == steps and all(name in report["metrics"] for name in wanted)


def table_row(run: str, report, error, train_seconds, eval_seconds) -> dict:
    """One run's row: its report's step and metrics (None where missing), or its error if it failed."""
    metrics = report["metrics"] if report else {}
    return {
        "run": run,
        "status": "failed" if error else "ok",
        "error": error,
        "steps": report["step"] if report else None,
        **{name: metrics.get(name) for name, _ in COLUMNS},
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
    }


def measure(run: Run, args, previous: dict) -> dict:
    """Train and evaluate one run (each only if needed); its table row. RunInterrupted on Ctrl-C."""
    try:
        trained = run_phase(run, "train", train_command(run, args))
    except KeyboardInterrupt as interrupt:
        cut_short = interrupt.args[0] if interrupt.args else None
        seconds = train_seconds(cut_short, previous.get("train_seconds")) if cut_short else previous.get("train_seconds")
        raise RunInterrupted(table_row(run.name, None, "train: interrupted", seconds, None)) from None
    seconds = train_seconds(trained, previous.get("train_seconds"))
    if trained.returncode:
        return table_row(run.name, None, f"train: {trained.last_stderr_line}", seconds, None)
    if (trained_steps := steps_beyond(trained, args.steps)) is not None:  # not this table's budget
        return table_row(run.name, None, f"train: {args.out / run.name} is trained for {trained_steps} steps, past "
                                         f"--steps {args.steps}: pass another --out, or --steps {trained_steps}", seconds, None)
    eval_file = args.out / run.name / "eval.json"
    report = read_report(eval_file)
    if is_evaluated(report, args.steps, args.metrics):
        print(f"=== {run.name}: evaluate skipped: {eval_file} is at step {args.steps} with the wanted metrics")
        return table_row(run.name, report, None, seconds, previous.get("eval_seconds"))
    try:
        evaluated = run_phase(run, "evaluate", evaluate_command(run, args))
    except KeyboardInterrupt:  # it is evaluated again on the resume, its training time kept
        raise RunInterrupted(table_row(run.name, None, "evaluate: interrupted", seconds, None)) from None
    if evaluated.returncode:
        return table_row(run.name, None, f"evaluate: {evaluated.last_stderr_line}", seconds, round(evaluated.seconds, 1))
    return table_row(run.name, read_report(eval_file), None, seconds, round(evaluated.seconds, 1))


def machine() -> dict:
    """The CPU's model name and whether it has AVX-512 and AMX bf16, from lscpu."""
    fields = {}
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        output = ""
    for line in output.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    return {"cpu": fields.get("Model name", "unknown"), "logical_cpus": os.cpu_count(),
            "avx512f": "avx512f" in flags, "amx_bf16": "amx_bf16" in flags}


def cell(name: str, value) -> str:
    if value is None:
        return "—"
    if name.endswith("_accuracy"):
        return f"{100 * value:.2f}"
    if name == "reconstruction_mse":
        return f"{value:.5f}"
    if name.endswith("_seconds"):
        return f"{value:.0f}"
    return str(value)


def status_cell(row: dict) -> str:
    return "ok" if row["status"] == "ok" else f"failed: {row['error']}".replace("|", "\\|")


def markdown_table(header: dict, rows: list) -> str:
    m = header["machine"]
    headings = ["run", "steps", *(heading for _, heading in COLUMNS), "train s", "eval s", "status"]
    names = ["run", "steps", *(name for name, _ in COLUMNS), "train_seconds", "eval_seconds"]
    lines = [
        "# ALAE paper table: MNIST",
        "",
        f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs; avx512f: {'yes' if m['avx512f'] else 'no'}, "
        f"amx_bf16: {'yes' if m['amx_bf16'] else 'no'}",
        f"- date: {header['date']}",
        f"- command: `{header['command']}`",
        f"- code: {header.get('code', 'unknown')}; seed: {header.get('seed', 'unknown')}",
        "",
        LEGEND,
        "",
        "| " + " | ".join(headings) + " |",
        "|" + "---|" * len(headings),
    ]
    for row in rows:
        lines.append("| " + " | ".join([*(cell(name, row[name]) for name in names), status_cell(row)]) + " |")
    return "\n".join(lines) + "\n"


def code_version() -> str:
    """The git commit of this checkout (with "+changes" when files differ from it), or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                 capture_output=True, text=True)
    except FileNotFoundError:
        return "unknown"
    if commit.returncode:
        return "unknown"
    return commit.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def write_tables(out: Path, header: dict, rows: list) -> dict:
    table = {**header, "rows": rows}
    (out / "table.md").write_text(markdown_table(header, rows))
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def previous_rows(out: Path) -> dict:
    """The rows of an earlier invocation's table.json, by run (for the time spent in skipped phases)."""
    try:
        return {row["run"]: row for row in json.loads((out / "table.json").read_text())["rows"]}
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return {}


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    args.out.mkdir(parents=True, exist_ok=True)
    header = {"machine": machine(), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "command": shlex.join(["python", *sys.argv]), "code": code_version(),
              "seed": args.seed if args.seed is not None else "each preset's", "steps": args.steps,
              "metrics": args.metrics}
    previous = previous_rows(args.out)
    runs = planned_runs(args)
    # An earlier invocation's rows stand until their run is measured again (an interrupt lost them).
    measured = {run.name: previous[run.name] for run in runs if run.name in previous}

    def table_rows():
        return [measured[run.name] for run in runs if run.name in measured]

    for number, run in enumerate(runs, 1):
        print(f"\n##### run {number}/{len(runs)}: {run.name}")
        try:
            measured[run.name] = measure(run, args, previous.get(run.name, {}))
        except RunInterrupted as interrupted:  # its training time so far is kept, to be added up on the resume
            measured[run.name] = interrupted.row
            write_tables(args.out, header, table_rows())
            print(f"\ninterrupted during {run.name}: re-run the same command to resume (each run goes on from "
                  "its last checkpoint)", file=sys.stderr)
            return 130
        except KeyboardInterrupt:  # between a run's phases
            write_tables(args.out, header, table_rows())
            print(f"\ninterrupted during {run.name}: re-run the same command to resume", file=sys.stderr)
            return 130
        table = write_tables(args.out, header, table_rows())
    rows = table_rows()
    print(f"\n{markdown_table(header, rows)}")
    print(f"written: {args.out / 'table.md'}, {args.out / 'table.json'}")
    print(json.dumps(table))
    return 1 if any(row["status"] == "failed" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
