"""The tiny StyleALAE preset through the train CLI: a resolution transition, an exact resume mid-fade,
and the settings a resume keeps."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from exported_run import REPO
from PIL import Image

from alae_tf import train


def run_tiny(out, steps, *flags):
    return train.main(["--preset", "tiny_style", "--out", str(out), "--steps", str(steps), "--verbose", "0", *flags])


def checkpoint_values(run_dir):
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    keys = [k for k in reader.get_variable_to_shape_map() if "save_counter" not in k and "OBJECT_GRAPH" not in k]
    return {key: reader.get_tensor(key) for key in keys}


def test_tiny_preset_grows_to_8x8_and_resumes_mid_fade_to_float_rounding(tmp_path, capsys):
    """tiny_style: level 0 (4x4) for steps 0-23, level 1 (8x8) from step 24, fading in over steps 24-35.
    The straight run is the command itself, with TensorFlow's log level left at its default: its
    stderr holds nothing (TensorFlow's oneDNN remapper failed on the train step from 8x8 up and
    printed an `E ... remapper failed` line at each level). A copy of it cut back to its step-30
    checkpoint (as a crash after that save leaves it) resumes and ends where the straight run does
    to float rounding (rtol 1e-4: the two run in processes of other thread settings; bit-equality is
    --deterministic's, tests/test_determinism.py). The resumed run then refuses another --jit or
    dataset (a model that draws noise: its checks come after the restore)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "alae_tf.train", "--preset", "tiny_style", "--steps", "36", "--verbose", "0",
               "--checkpoint-every", "10", "--out", str(tmp_path / "straight")]
    started = time.time()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.time() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert "level 0 (4x4): steps 0 -> 24" in result.stdout and "level 1 (8x8): steps 24 -> 36" in result.stdout
    if not os.path.exists("/proc/driver/nvidia"):  # a GPU machine keeps TensorFlow's CUDA lines
        assert result.stderr == ""
    assert elapsed < 300, f"one resolution transition took {elapsed:.0f} s"  # ~30 s; minutes meant a retrace per step
    grids = sorted(p.name for p in (tmp_path / "straight" / "samples").glob("samples_*.png"))
    assert "samples_0000020.png" in grids and "samples_0000036.png" in grids
    # Latent grids at the level's resolution (alae_tf.grids): 4x4 cells at step 20, 8x8 at step 36;
    # style mixing 6 x 5 cells, interpolations 10 x 6; 8x8 has no "middle" range.
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "straight" / "samples").glob("*.png")}
    for step, cell in (("0000020", 4), ("0000036", 8)):
        assert sizes[f"interpolations_{step}.png"] == (10 * cell, 6 * cell)
        assert sizes[f"style_mixing_coarse_{step}.png"] == (6 * cell, 5 * cell)
        assert sizes[f"style_mixing_fine_{step}.png"] == (6 * cell, 5 * cell)
        assert f"style_mixing_middle_{step}.png" not in sizes

    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight", resumed)
    for path in (resumed / "checkpoints").glob("ckpt-36.*"):
        path.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(resumed / "checkpoints"), "ckpt-30", ["ckpt-20", "ckpt-30"])
    assert run_tiny(resumed, 36) == 0  # from the middle of the fade-in
    out = capsys.readouterr().out
    assert "resuming at step 30" in out and "level 1 (8x8): steps 30 -> 36" in out and "images (done)" not in out

    straight, resumed_values = checkpoint_values(tmp_path / "straight"), checkpoint_values(resumed)
    assert straight.keys() == resumed_values.keys()
    assert any("encoder_ema" in k for k in straight) and any("w_avg" in k for k in straight)
    for key in straight:
        np.testing.assert_allclose(resumed_values[key], straight[key], rtol=1e-4, atol=1e-5, err_msg=key)

    assert run_tiny(resumed, 40, "--jit") == 2
    assert "keeps its --jit setting" in capsys.readouterr().err
    assert run_tiny(resumed, 40, "--dataset", "fashion_mnist") == 2
    assert "trained with dataset mnist; resuming with --dataset fashion_mnist" in capsys.readouterr().err
