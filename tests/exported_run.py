"""A small trained run and its export, made once per test session (shared by the export and
serving tests through the fixtures in conftest.py), and helpers the export and serving tests share."""

import contextlib
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import export.__main__ as export_cli
from alae_tf import edit, train

REPO = Path(__file__).resolve().parents[1]
SMALL_RUN = """
preset: mnist_small
model: {hidden_dim: 64, mapping_layers: 2}
train: {steps: 20, checkpoint_every: 10, sample_every: 10, log_every: 5}
"""
NAME = "alae_mnist_small"
STYLE_NAME = "alae_tiny_style"
DIRECTIONS = ("0_to_1", "3_to_8")  # fitted on the small run before its export (so the export carries them)
# Run a module with TensorFlow (and everything that pulls it in) unimportable.
WITHOUT_TF = (
    "import sys, runpy\n"
    "for name in ('tensorflow', 'keras', 'tf2onnx', 'tensorflow_serving', 'alae_tf'):\n"
    "    sys.modules[name] = None\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


@contextlib.contextmanager
def session_directory(tmp_path_factory, name: str):
    """An empty or already-built directory for one artifact of the test session, held under a lock:
    pytest-xdist's workers share it (the first builds it, the others wait, then reuse it)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's directory, above each worker's own
    root = base / name
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def exported_model(tmp_path_factory) -> tuple[Path, Path]:
    """(run dir, export dir): a 20-step run with two class-pair directions (DIRECTIONS, fitted on
    3000 training images) and its EMA export as version 1, made once per session."""
    with session_directory(tmp_path_factory, "exported_model") as root:
        run, out, done = root / "run", root / "export", root / "done"
        if not done.exists():
            (root / "small.yaml").write_text(SMALL_RUN)
            assert train.main(["--config", str(root / "small.yaml"), "--out", str(run), "--verbose", "0"]) == 0
            pairs = [name.replace("_to_", ":") for name in DIRECTIONS]
            assert edit.main(["directions", "--run", str(run), "--pairs", *pairs, "--count", "3000"]) == 0
            assert export_cli.main(["--run", str(run), "--out", str(out)]) == 0
            done.touch()
    return run, out


def exported_style_model(tmp_path_factory) -> tuple[Path, Path]:
    """(run dir, export dir): a 20-step tiny_style run (8x8, 4 style inputs, noise) and its export, once per session."""
    with session_directory(tmp_path_factory, "exported_style_model") as root:
        run, out, done = root / "run", root / "export", root / "done"
        if not done.exists():
            assert train.main(["--preset", "tiny_style", "--steps", "20", "--out", str(run), "--verbose", "0"]) == 0
            assert export_cli.main(["--run", str(run), "--out", str(out)]) == 0
            done.touch()
    return run, out


def copied_onnx_files(monkeypatch, export_dir):
    """export.onnx_files.write_onnx_files replaced by a copy of the float32 ONNX files an export of
    the same run already wrote into `export_dir` (tf2onnx takes ~10 s even for tiny_style): for
    tests of what comes after the conversion."""
    import shutil

    from export import onnx_files
    from serving import contract

    def write_copies(endpoints, signatures, out_dir, metadata_json):
        out_dir.mkdir(parents=True, exist_ok=True)
        written = {path.stem: path for path in export_dir.glob("onnx/*/*/*.onnx") if len(path.suffixes) == 1}
        assert written, f"no ONNX files in {export_dir}"
        # in write_onnx_files' order: the checks run their cases in it, and an error names the first that fails
        return {graph: Path(shutil.copy(written[graph], out_dir / written[graph].name))
                for graph in contract.onnx_graphs(signatures)}

    monkeypatch.setattr(onnx_files, "write_onnx_files", write_copies)


def run_signature(saved, name, **inputs):
    return {k: v.numpy() for k, v in saved.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def real_images(count):
    from alae_tf.data import load_mnist

    return load_mnist().test_images[-count:].reshape(count, 28, 28, 1)


@contextlib.contextmanager
def http_server(export_dir, *flags):
    """Base URL of `python -m serving.http` on an ephemeral loopback port, in a subprocess where
    TensorFlow cannot be imported; always shut down."""
    command = [sys.executable, "-c", WITHOUT_TF, "serving.http", "--model", str(export_dir), "--port", "0", *flags]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # "serving NAME version V (VARIANT ONNX files) at http://HOST:PORT/v1/models/NAME"
        if not line.startswith("serving "):
            process.kill()
            pytest.fail(f"server did not start: {line}{process.stderr.read()[-3000:]}")
        yield line.split(" at ")[1].strip().split("/v1/")[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assert_close_images(actual, expected, what):
    """Images from two runtimes agree: float within 1e-4 x max(1, |expected|); uint8 at most one
    level off, only where a tiny float difference flips the rounding (< 2% of pixels)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    diff = np.abs(actual.astype(np.float64) - expected)
    if expected.dtype == np.uint8:
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02, what
    else:
        assert diff.max() <= 1e-4 * max(1.0, np.abs(expected).max()), what
