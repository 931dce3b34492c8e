"""A small trained run and its export, made once per test session (shared by the export and
serving tests through the fixtures in conftest.py)."""

from pathlib import Path

import tensorflow as tf

import export.__main__ as export_cli
from alae_tf import train

SMALL_RUN = """
preset: mnist_small
model: {hidden_dim: 64, mapping_layers: 2}
train: {steps: 20, checkpoint_every: 10, sample_every: 10, log_every: 5}
"""
NAME = "alae_mnist_small"


def exported_model(tmp_path_factory) -> tuple[Path, Path]:
    """(run dir, export dir): a 20-step run and its EMA export as version 1, made once per session."""
    root = tmp_path_factory.getbasetemp() / "exported_model"
    run, out, done = root / "run", root / "export", root / "done"
    if not done.exists():
        root.mkdir(exist_ok=True)
        (root / "small.yaml").write_text(SMALL_RUN)
        assert train.main(["--config", str(root / "small.yaml"), "--out", str(run), "--verbose", "0"]) == 0
        assert export_cli.main(["--run", str(run), "--out", str(out)]) == 0
        done.touch()
    return run, out


def run_signature(saved, name, **inputs):
    return {k: v.numpy() for k, v in saved.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def real_images(count):
    from alae_tf.data import load_mnist

    return load_mnist().test_images[-count:].reshape(count, 28, 28, 1)
