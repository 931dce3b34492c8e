"""Export of a StyleALAE run: noise and truncation as inputs, E_ema at the final resolution,
TF vs ONNX parity, and the ONNX app API on a style export."""

import json

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

import export.__main__ as export_cli
from alae_tf import train
from alae_tf.run import load_run
from serving import layout
from serving.contract import noise_input_names
from serving.onnx_model import ALAEOnnx

NAME = "alae_tiny_style"


@pytest.fixture(scope="module")
def style_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("style_export")
    run, out = root / "run", root / "export"
    assert train.main(["--preset", "tiny_style", "--steps", "30", "--out", str(run), "--verbose", "0"]) == 0
    assert export_cli.main(["--run", str(run), "--out", str(out)]) == 0
    config, model = load_run(run)
    saved = tf.saved_model.load(str(layout.saved_model_dir(out, NAME, 1)))
    return model, saved, out


def test_metadata_lists_the_noise_inputs_and_truncation_cutoff(style_export):
    model, saved, out = style_export
    metadata = layout.read_metadata(layout.onnx_dir(out, NAME, 1))
    assert metadata["backbone"] == "style" and metadata["image_shape"] == [8, 8, 1]
    assert metadata["noise_inputs"] == [[4, 4, 1], [4, 4, 1], [8, 8, 1], [8, 8, 1]]
    assert metadata["truncation_cutoff"] == 8
    assert {"decode_noise", "generate_noise", "decode_noise_uint8", "generate_noise_uint8"} <= set(saved.signatures)


def test_noise_signatures_reproduce_the_ema_generator_and_truncation(style_export):
    model, saved, out = style_export
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 8)).astype(np.float32)
    noise = [rng.standard_normal((5, *shape)).astype(np.float32) for shape in model.generator_ema.noise_shapes(1)]
    feeds = {name: tf.constant(n) for name, n in zip(noise_input_names(4), noise)}
    psi = np.full(5, 0.5, np.float32)
    got = saved.signatures["generate_noise"](z=tf.constant(z), truncation_psi=tf.constant(psi), **feeds)["images"].numpy()
    # By hand: w_avg from the export's own rule (mean of F_ema over 10k seeded z), truncation on all 4
    # style inputs (cutoff 8 > 4), then G_ema with the same noise.
    w_avg = np.mean(model.mapping_ema(np.random.default_rng(0).standard_normal((10000, 8)).astype(np.float32)).numpy(), axis=0)
    w = model.mapping_ema(z).numpy()
    styles = np.repeat((w_avg + 0.5 * (w - w_avg))[:, None, :], 4, axis=1)
    expected = model.generator_ema(styles, noise=[tf.constant(n) for n in noise]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Different noise gives a different image; the noise-free decode is the deterministic mean image.
    other = {k: tf.constant(rng.standard_normal(v.shape).astype(np.float32)) for k, v in feeds.items()}
    assert np.abs(saved.signatures["generate_noise"](z=tf.constant(z), truncation_psi=tf.constant(psi), **other)["images"].numpy() - got).max() > 1e-3
    images = np.random.default_rng(1).uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(saved.signatures["encode"](images=tf.constant(images))["w"].numpy(),
                               model.encoder_ema(images).numpy(), atol=1e-5)


def test_onnx_matches_tensorflow_with_noise_inputs_fed_by_name(style_export):
    model, saved, out = style_export
    onnx_dir = layout.onnx_dir(out, NAME, 1)
    session = onnxruntime.InferenceSession(str(onnx_dir / "generate_noise.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for batch in (1, 9):
        feeds = {"z": rng.standard_normal((batch, 8)).astype(np.float32), "truncation_psi": np.full(batch, 0.7, np.float32)}
        for name, shape in zip(noise_input_names(4), model.generator_ema.noise_shapes(1)):
            feeds[name] = rng.standard_normal((batch, *shape)).astype(np.float32)
        expected = saved.signatures["generate_noise"](**{k: tf.constant(v) for k, v in feeds.items()})["images"].numpy()
        actual = session.run(["images"], feeds)[0]
        assert np.abs(actual - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    app = ALAEOnnx(out)
    images = app.generate(n=4, seed=0, truncation_psi=0.7, as_uint8=True)
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8
    w = app.encode(images)
    np.testing.assert_allclose(w, saved.signatures["encode_uint8"](images=tf.constant(images))["w"].numpy(), atol=1e-4)
