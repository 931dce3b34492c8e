"""TensorFlow's start-up lines are dropped when it is imported after alae_tf; everything else on
stderr stays. The commands read their arguments before they import TensorFlow."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alae_tf import tensorflow_start

REPO = Path(__file__).resolve().parents[1]
# As TensorFlow 2.21 wrote them on a 2-core AMD EPYC without a GPU (2026-12-03), with one line of our own between.
START_UP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796310444.817637   21249 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.\n"
    "I0000 00:00:1796310444.818187   21249 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
    "a line of someone else\n"
    "I0000 00:00:1796310444.967829   21249 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n"
    "E0000 00:00:1796310452.074697   21249 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


WRITE_INSIDE = """
import os, sys
from alae_tf import tensorflow_start
tensorflow_start.nvidia_driver_present = lambda: sys.argv[1] == "gpu"
with tensorflow_start.start_up_lines_dropped():
    os.write(2, sys.stdin.read().encode())
    print("from Python", file=sys.stderr)
print("stdout untouched")
"""


@pytest.mark.parametrize("machine", ["cpu", "gpu"], ids=["no NVIDIA driver", "NVIDIA driver"])
def test_only_the_start_up_lines_are_dropped(machine):
    result = subprocess.run([sys.executable, "-c", WRITE_INSIDE, machine], input=START_UP, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    kept = [line for line in START_UP.splitlines()
            if line == "a line of someone else" or (machine == "gpu" and "cuda" in line.lower())]
    expected = [*kept, "from Python"]
    assert result.returncode == 0 and result.stdout == "stdout untouched\n"
    assert result.stderr.splitlines() == expected


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="a GPU machine keeps TensorFlow's CUDA lines")
def test_importing_alae_tf_leaves_tensorflow_for_later_and_tensorflow_and_xla_start_quietly():
    """At TensorFlow's default log level: an XLA-compiled function makes TensorFlow log its XLA
    service start at INFO level (hidden by alae_tf's default)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = ("import sys, alae_tf; print('tensorflow' in sys.modules, 'keras' in sys.modules); "
            "import keras; print(keras.ops.sum(keras.ops.ones(3))); "
            "import tensorflow as tf; tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == "False False" and result.stdout.splitlines()[1].startswith("tf.Tensor(3.0")


@pytest.mark.parametrize("argv, command", [
    (["python", "-m", "alae_tf.train", "--steps", "10"], True),
    (["python", "-u", "-m", "export", "--run", "r"], True),
    (["python", "-m", "serving.http"], True),
    (["python", "-X", "importtime", "-W", "ignore", "-mexport"], True),
    (["python", "-m", "exporter"], False),
    (["python", "-m", "myapp", "-m", "alae_tf"], False),
    (["python", "app.py", "-m", "alae_tf.train"], False),
    (["python", "-c", "import alae_tf"], False),
])
def test_started_as_command_means_one_of_the_projects_modules_run_by_python_m(monkeypatch, argv, command):
    monkeypatch.setattr(sys, "orig_argv", argv)
    assert tensorflow_start.started_as_command() is command


COMMANDS = ["alae_tf.train", "alae_tf.evaluate", "alae_tf.edit", "alae_tf.project", "alae_tf.convert",
            "alae_tf.data.prepare", "alae_tf.metrics.train_mnist_classifier", "alae_tf.align_faces", "alae_tf.align_digits",
            "export", "serving.http"]


def heavy_imports(result: subprocess.CompletedProcess) -> list[str]:
    """The modules of TensorFlow, Keras, torch and scikit-learn a `python -X importtime` run imported."""
    imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert imported, result.stderr[-2000:]
    return [name for name in imported if name.partition(".")[0] in ("tensorflow", "keras", "torch", "sklearn")]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_a_mistyped_flag_are_answered_without_importing_tensorflow(command):
    """TensorFlow's import takes seconds; --help answered in a fraction of one (0.13 s against 6.4 s
    for alae_tf.train on a 2-core EPYC, 2026-12-07)."""
    for flags, exit_code in ((["--help"], 0), (["--no-such-flag"], 2)):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", command, *flags], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == exit_code and heavy_imports(result) == [], result.stderr[-2000:]
        assert f"python -m {command}" in (result.stdout if exit_code == 0 else result.stderr)
        assert (result.stdout.startswith("usage: ") if exit_code == 0 else "error: " in result.stderr)


@pytest.mark.parametrize("command, flag", [
    (["alae_tf.train", "--step", "3"], "--step"),  # trained as --steps 3 until 2026-12-07
    (["alae_tf.evaluate", "--run", "RUN", "--metric", "fid"], "--metric"),
    (["alae_tf.edit", "list", "--run", "RUN", "--direction", "d.json"], "--direction"),
    (["alae_tf.project", "--run", "RUN", "--images", "held-out:1", "--step", "3"], "--step"),
    (["alae_tf.convert", "--checkpoint", "c.pth", "--config", "c.yaml", "--out", "OUT", "--batch", "8"], "--batch"),
    (["alae_tf.data.prepare", "RUN", "OUT", "--resolution", "32", "--test", "5"], "--test"),
    (["alae_tf.metrics.train_mnist_classifier", "--out", "OUT", "--epoch", "2"], "--epoch"),
    (["export", "--run", "RUN", "--onnx"], "--onnx"),  # taken for --onnx-int8 until 2026-12-07
    (["serving.http", "--model", "RUN", "--stud"], "--stud"),
    # Before the missing required arguments (argparse names those first: two rounds to a working command).
    (["alae_tf.project", "--bogus"], "--bogus"),
    (["alae_tf.convert", "--check", "c.pth"], "--check"),
    (["alae_tf.edit", "apply", "--run", "RUN", "--strength", "2"], "--strength"),
    (["alae_tf.edit", "list", "--run", "RUN", "extra"], "extra"),  # had named the --help of edit, not edit list
])
def test_an_abbreviated_or_unknown_flag_is_named_in_one_line_before_anything_else(command, flag, tmp_path):
    command = [str(tmp_path) if arg == "RUN" else str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    result = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    prog = " ".join(command[:2] if command[0] == "alae_tf.edit" else command[:1])  # a subcommand's own --help
    assert result.stderr == f"error: unrecognized arguments: {flag} (see python -m {prog} --help)\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, command", [(["--run", "RUN", "apply", "--direction", "d"], "apply"),
                                           (["--run", "RUN"], "COMMAND")])
def test_an_edit_commands_option_before_its_name_is_told_where_it_goes(argv, command, tmp_path):
    argv = [str(tmp_path) if arg == "RUN" else arg for arg in argv]
    result = subprocess.run([sys.executable, "-m", "alae_tf.edit", *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stderr == (
        f"error: unrecognized arguments: --run; it goes after the command's name: python -m alae_tf.edit {command} "
        "--run ... (see python -m alae_tf.edit --help)\n")


def test_help_wins_over_an_unknown_flag_and_a_value_with_a_space_is_a_value(capsys):
    """As in argparse: --help beside a mistyped flag prints the help; "--a b.png" (a space) is a
    file name, not an option (an audit found both refused by the unknown-flag check)."""
    from serving.command_line import CommandParser

    parser = CommandParser(prog="python -m tool")
    parser.add_argument("--images", nargs="+", required=True)
    assert parser.parse_args(["--images", "--a b.png", "-1e-1"]).images == ["--a b.png", "-1e-1"]
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--imagez", "x.png", "--help"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("usage: python -m tool")
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--imagez", "x.png"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: unrecognized arguments: --imagez (see python -m tool --help)\n"


@pytest.mark.parametrize("script, argv, message", [
    ("compare_official", ["--round", "3"], "unrecognized arguments: --round"),  # ran as --rounds 3 until 2026-12-07
    ("studio_latency", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    # These two scripts' checks ended with exit 1 and no pointer to --help until 2026-12-07.
    ("inference_latency", ["--export", "EXPORT", "--official", "CHECKOUT"],
     "--official needs --torch-python (a python with torch and yacs)"),
    ("inference_latency", ["--export", "EXPORT"], "EXPORT: no such file or directory"),
    ("mode_coverage", ["--set", "model.bogus=1"], "--set model.bogus: no such setting"),
    # Found by an audit, 2026-12-07: --repeats 0 failed after a full-size export, --warmup 0 after the official round.
    ("official_export", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("compare_official", ["--official", "CHECKOUT", "--torch-python", "PYTHON", "--warmup", "0"],
     "--rounds, --steps and --warmup must be at least 1"),
    # Found by the same audit, mended 2026-12-07: each was a traceback, minutes in for some.
    ("official_export", ["--work", "AFILE"], "argument --work: AFILE is a file, not a folder"),
    ("paper_table", ["--out", "AFILE/runs"], "argument --out: AFILE/runs: AFILE above it is a file, not a folder"),
    ("compare_official", ["--official", "CHECKOUT", "--torch-python", "BARE"],
     "argument --torch-python: BARE cannot import torch, yacs (needed: torch, yacs)"),
    ("inference_latency", ["--export", "EXPORT", "--http", "--url", "localhost:8501"],
     "--url takes a server's base URL such as http://127.0.0.1:8501, got 'localhost:8501'"),
    ("reliability", ["--parts", ","], "--parts names none; choose from kill, stop, corrupt, fuzz, hol, slow"),
])
def test_a_benchmark_scripts_usage_error_is_one_line_naming_its_help(script, argv, message, tmp_path):
    """PYTHON has torch and yacs (empty stand-ins on its path); BARE is a Python without them."""
    for module in ("torch", "yacs"):
        (tmp_path / "stand_ins" / module).mkdir(parents=True)
        (tmp_path / "stand_ins" / module / "__init__.py").write_text("")
    (tmp_path / "AFILE").write_text("")
    bare = tmp_path / "BARE"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    bare.chmod(0o755)
    paths = {"EXPORT": str(tmp_path / "EXPORT"), "CHECKOUT": str(tmp_path / "CHECKOUT"), "AFILE": str(tmp_path / "AFILE"),
             "BARE": str(bare), "PYTHON": sys.executable}
    argv = [paths.get(arg.split("/")[0], "") + arg.removeprefix(arg.split("/")[0]) if arg.split("/")[0] in paths else arg
            for arg in argv]
    result = subprocess.run([sys.executable, REPO / "benchmarks" / f"{script}.py", *argv], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": f"{tmp_path / 'stand_ins'}{os.pathsep}{REPO}"})
    assert result.returncode == 2 and result.stdout == ""
    for token in ("EXPORT", "AFILE", "BARE"):
        message = message.replace(token, paths[token])
    assert result.stderr == f"error: {message} (see python benchmarks/{script}.py --help)\n"


@pytest.mark.parametrize("command, message", [
    (["alae_tf.evaluate", "--run", "RUN", "--metrics", "fid,reconstructoin"],
     "error: unknown metric(s) reconstructoin; available: probe, "),
    (["alae_tf.evaluate", "--run", "NOWHERE"], "error: NOWHERE: no such directory; pass the --out directory of "),
    (["export", "--run", "NOWHERE"], "error: NOWHERE: no such directory; "),
    (["alae_tf.edit", "list", "--run", "RUN"], "error: RUN: not a training run (no config.yaml); "),
    (["alae_tf.project", "--run", "NOWHERE", "--images", "held-out:2"], "error: NOWHERE: no such directory; "),
    (["alae_tf.data.prepare", "NOWHERE", "OUT", "--resolution", "32"],
     "error: NOWHERE: no such directory; SRC must be a folder of images"),
    (["alae_tf.data.prepare", "RUN", "OUT", "--resolution", "33"], "error: --resolution must be a power of two"),
])
def test_a_misspelt_metric_or_run_is_told_without_importing_tensorflow(command, message, tmp_path):
    paths = {"RUN": str(tmp_path), "NOWHERE": str(tmp_path / "nowhere"), "OUT": str(tmp_path / "out")}
    command = [paths.get(arg, arg) for arg in command]
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", *command], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and heavy_imports(result) == []
    for name, path in paths.items():
        message = message.replace(name, path)
    assert result.stderr.splitlines()[-1].startswith(message), result.stderr[-500:]


def interrupted_while_importing(command: list[str]) -> subprocess.CompletedProcess:
    """Ctrl-C 0.3 s after start: TensorFlow's import takes seconds (3 on a 2-core EPYC)."""
    process = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_ctrl_c_while_a_command_imports_tensorflow_prints_one_line_and_ends_by_sigint(tmp_path):
    result = interrupted_while_importing(["-m", "alae_tf.train", "--steps", "1", "--out", str(tmp_path / "run")])
    assert result.stderr == "\ninterrupted (Ctrl-C) while starting: nothing was done\n" and result.stdout == ""
    assert result.returncode == -signal.SIGINT  # a shell reports 130


def test_ctrl_c_while_an_app_imports_alae_tf_is_a_keyboard_interrupt_as_usual():
    result = interrupted_while_importing(["-c", "import alae_tf.inference"])
    assert "Traceback" in result.stderr and result.stderr.rstrip().endswith("KeyboardInterrupt")
