"""--deterministic (train.deterministic): refused while oneDNN's kernels are on, and with them off,
the StyleALAE step that otherwise differs from run to run in its last bits is bit-reproducible."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from alae_tf import train, training

# One mnist_style32 training step at its top level (32x32, batch 64) from the seeded initial
# state, on random images; prints a digest of every weight after it. argv[1]: "deterministic" or not.
ONE_STEP = r"""
import hashlib, sys
import numpy as np
import keras
import tensorflow as tf
from alae_tf import schedule, training
from alae_tf.config import load_preset
from alae_tf.data import ImageSource
from alae_tf.data.batches import training_batches
from alae_tf.model import build_alae
if sys.argv[1] == "deterministic":
    training.make_deterministic()
keras.utils.set_random_seed(0)
config = load_preset("mnist_style32")
model = build_alae(config)
phase = schedule.phases(config)[-1]
model.enter_phase(phase)
images = np.random.default_rng(0).integers(0, 256, (256, 32, 32, 1), dtype=np.uint8)
batch = next(iter(training_batches(ImageSource.from_arrays(images), phase, start_step=phase.first_step, latent_dim=config.model.latent_dim,
                                   seed=0, num_styles=model.generator.num_styles, styles_in_use=model.generator.num_styles,
                                   mixing_probability=config.train.style_mixing_prob)))
tf.function(model.train_step)(batch)  # as fit runs it: a graph, whose independent ops run concurrently
print(hashlib.sha1(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest())
"""


def test_deterministic_is_refused_while_onednn_kernels_are_on_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """--deterministic is refused as the command line is read (it had waited for TensorFlow's
    import, seconds); train.deterministic from a config file, once the config is read."""
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    flag = subprocess.run([sys.executable, "-X", "importtime", "-m", "alae_tf.train", "--preset", "tiny_style", "--out",
                           str(tmp_path / "run"), "--steps", "1", "--deterministic"], capture_output=True, text=True,
                          timeout=120)
    imported = [line.rpartition("|")[2].strip() for line in flag.stderr.splitlines() if line.startswith("import time:")]
    assert flag.returncode == 2 and imported and not [name for name in imported if name.startswith("tensorflow")]
    assert flag.stderr.splitlines()[-1].startswith("error: train.deterministic (--deterministic, or a run trained with "
                                                   "it) needs TensorFlow's oneDNN kernels off")
    config = tmp_path / "deterministic.yaml"
    config.write_text("preset: tiny_style\ntrain: {deterministic: true}\n")
    assert train.main(["--config", str(config), "--out", str(tmp_path / "run"), "--steps", "1", "--verbose", "0"]) == 2
    assert "run it as TF_ENABLE_ONEDNN_OPTS=0 python -m alae_tf.train" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_make_deterministic_sets_its_three_tensorflow_settings(monkeypatch):
    """What the slow test below measured necessary, checked in the default suite: a setting dropped
    from make_deterministic fails here at once (the slow test misses a one-in-two difference a
    quarter of the time). The fourth, oneDNN off, is the environment's: the test above checks that
    a deterministic run refuses to start without it. TensorFlow's setters are recorded, not called:
    they are for the whole process, and this one runs the other tests next."""
    calls = []
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: calls.append("op determinism"))
    monkeypatch.setattr(tf.config.optimizer, "set_experimental_options", lambda options: calls.append(options))
    monkeypatch.setattr(tf.config.threading, "set_inter_op_parallelism_threads", lambda n: calls.append(("inter-op", n)))
    training.make_deterministic()
    assert sorted(map(str, calls)) == sorted(map(str, ["op determinism", {"arithmetic_optimization": False},
                                                       ("inter-op", 1)]))


@pytest.mark.slow
def test_with_onednn_off_a_deterministic_style32_step_is_bit_reproducible():
    # Measured 2026-12-03 on a 2-core AMD EPYC, runs of this step: oneDNN on with one inter-op thread,
    # with or without TensorFlow's switch: 4 different digests in 5 runs; oneDNN off: 3 of 3 different
    # with neither the switch nor one inter-op thread, 2 alike of 3 with either alone; all three: 4 of 4 alike.
    # 2026-12-07 (this test failed): with those three, two digests (8 and 11 of 19 runs, PYTHONHASHSEED
    # fixed or address randomisation off in some; with one intra-op thread two others, 2 and 2 of 4),
    # one in 6 runs with Grappler off, one in 14 with its arithmetic optimizer off (make_deterministic's
    # fourth). Three runs: a one-in-two difference is missed one time in four.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}

    def digest():
        done = subprocess.run([sys.executable, "-c", ONE_STEP, "deterministic"], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1]

    assert digest() == digest() == digest()
