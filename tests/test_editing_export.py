"""Per-layer styles and directions in the export: `decode_styles` (and its uint8 and noise forms)
gives the same images through the Sampler, the SavedModel, ONNX Runtime (ALAEOnnx) and the HTTP
server; w on every style input equals decode(w); the run's directions and layer ranges travel in
the metadata, and ALAEOnnx edits and mixes with them where TensorFlow cannot be imported."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from exported_run import (DIRECTIONS, NAME, REPO, STYLE_NAME, assert_close_images, http_server, real_images,
                          run_signature)

from alae_tf.data.batches import to_model_range
from alae_tf.run_layout import RunDir
from alae_tf.inference import Sampler
from alae_tf.run_dir import load_run
from serving import layout
from serving.client import RestClient
from serving.contract import noise_input_names
from serving.editing import DirectionSet
from serving.onnx_model import ALAEOnnx


@pytest.fixture(scope="module")
def mlp(exported):
    run, out = exported
    config, model = load_run(run)
    return Sampler.from_model(model), tf.saved_model.load(str(layout.saved_model_dir(out, NAME, 1))), ALAEOnnx(out), run


@pytest.fixture(scope="module")
def style(style_exported):
    run, out = style_exported
    config, model = load_run(run)
    return Sampler.from_model(model), tf.saved_model.load(str(layout.saved_model_dir(out, STYLE_NAME, 1))), ALAEOnnx(out), out


def test_the_export_carries_the_runs_directions_and_layer_ranges(mlp):
    sampler, saved, app, run = mlp
    fitted = DirectionSet.read(RunDir(run).directions_file)
    assert fitted.names == list(DIRECTIONS) and app.directions.names == list(DIRECTIONS)
    for name in DIRECTIONS:
        np.testing.assert_array_equal(app.directions.vector(name), fitted.vector(name))  # bit for bit through JSON
        assert 0.5 <= fitted.directions[DIRECTIONS.index(name)].info["held_out_accuracy"] <= 1
    assert app.metadata["layer_ranges"] == {"all": [0, 1], "coarse": [0, 1], "middle": [0, 1], "fine": [0, 1]}
    served = json.loads(run_signature(saved, "metadata", row=np.zeros(1, np.int32))["metadata_json"][0])
    assert served["directions"] == fitted.to_json()  # the SavedModel's metadata signature carries them too


def test_mlp_decode_styles_matches_across_runtimes_and_equals_decode(mlp):
    sampler, saved, app, run = mlp
    w = sampler.encode(to_model_range(real_images(5))).numpy()
    styles = np.repeat(w[:, None], 1, axis=1)
    reference = sampler.decode(styles).numpy()
    np.testing.assert_array_equal(reference, sampler.decode(w).numpy())
    np.testing.assert_allclose(run_signature(saved, "decode_styles", styles=styles)["images"], reference, atol=1e-5)
    np.testing.assert_allclose(app.decode_styles(styles), reference, atol=1e-4)
    np.testing.assert_allclose(app.decode_styles(styles), app.decode(w), atol=1e-6)
    np.testing.assert_array_equal(app.decode_styles(styles, as_uint8=True),
                                  run_signature(saved, "decode_styles_uint8", styles=styles)["images"])


def test_the_app_edits_as_the_sampler_does(mlp):
    sampler, saved, app, run = mlp
    pixels = real_images(4)
    strengths = np.array([0.0, 1.0, -2.0, 4.0], np.float32)
    vector = app.directions.vector("3_to_8")
    expected = sampler.decode(sampler.edit(sampler.encode(to_model_range(pixels)), vector, strengths)).numpy()
    np.testing.assert_allclose(app.edit(pixels, "3_to_8", strengths), expected, atol=1e-4)
    np.testing.assert_array_equal(app.edit(pixels, "3_to_8", 0.0), app.decode(app.encode(pixels)))  # zero strength
    for layers in ("all", "coarse", (0, 1)):  # the MLP's ranges all mean every style input
        np.testing.assert_array_equal(app.edit(pixels, vector, strengths, layers=layers), app.edit(pixels, "3_to_8", strengths))
    np.testing.assert_allclose(app.mix(pixels, pixels[::-1], "all"), app.reconstruct(pixels[::-1]), atol=1e-6)
    with pytest.raises(ValueError, match="unknown direction 'smile'; known directions: 0_to_1, 3_to_8"):
        app.edit(pixels, "smile", 1.0)
    with pytest.raises(ValueError, match="strength must be a number or one per row"):
        app.edit(pixels, "3_to_8", [1.0, 2.0])
    for bad in (float("nan"), 1e300):  # 1e300 is infinite in float32
        with pytest.raises(ValueError, match=r"strength must be finite in float32, got (nan|1e\+300)"):
            app.edit(pixels, "3_to_8", bad)
    with pytest.raises(ValueError, match="unknown layer range 'hair'"):
        app.edit(pixels, "3_to_8", 1.0, layers="hair")


def style_inputs(style, batch, seed):
    """Styles that differ per style input (a real edit or mix would), and noise."""
    sampler, saved, app, out = style
    rng = np.random.default_rng(seed)
    styles = rng.standard_normal((batch, sampler.num_styles, sampler.latent_dim)).astype(np.float32)
    return styles, app.noise(batch, seed=seed)


def test_style_decode_styles_agrees_across_the_sampler_saved_model_app_and_http(style):
    sampler, saved, app, out = style
    styles, noise = style_inputs(style, 3, seed=1)
    feeds = dict(zip(noise_input_names(len(noise)), noise))
    cases = {"decode_styles": ({"styles": styles}, sampler.decode(styles).numpy()),
             "decode_styles_noise": ({"styles": styles, **feeds}, sampler.decode(styles, noise).numpy())}
    assert np.abs(cases["decode_styles_noise"][1] - cases["decode_styles"][1]).max() > 1e-4  # the noise matters
    with http_server(out) as url:
        client = RestClient(url, STYLE_NAME, timeout=30)
        for operation, (inputs, reference) in cases.items():
            for name in (operation, operation + "_uint8"):
                saved_images = run_signature(saved, name, **inputs)["images"]
                if name == operation:
                    np.testing.assert_allclose(saved_images, reference, atol=1e-5)
                app_images = app.run_signature(name, inputs)["images"]
                assert_close_images(app_images, saved_images, f"{name}: ONNX app vs SavedModel")
                for rows in (False, True):
                    assert_close_images(client.predict(name, inputs, rows=rows)["images"], app_images, f"{name}: HTTP (rows={rows})")
    np.testing.assert_array_equal(app.decode_styles(styles, noise=noise), app.run_signature("decode_styles_noise", cases["decode_styles_noise"][0])["images"])


def test_style_w_on_every_style_input_equals_decode(style):
    sampler, saved, app, out = style
    w = np.random.default_rng(2).standard_normal((4, sampler.latent_dim)).astype(np.float32)
    broadcast = np.repeat(w[:, None], sampler.num_styles, axis=1)
    np.testing.assert_array_equal(sampler.decode(broadcast).numpy(), sampler.decode(w).numpy())
    np.testing.assert_allclose(run_signature(saved, "decode_styles", styles=broadcast)["images"],
                               run_signature(saved, "decode", w=w)["images"], atol=1e-6)
    np.testing.assert_allclose(app.decode_styles(broadcast), app.decode(w), atol=1e-5)


def test_style_mix_and_layer_edits_use_the_exports_ranges(style):
    sampler, saved, app, out = style
    assert app.layer_ranges == {"all": (0, 4), "coarse": (0, 2), "fine": (2, 4)}
    pixels = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    w = sampler.encode(to_model_range(pixels))
    mixed = sampler.decode(sampler.mix(sampler.styles(w), sampler.styles(w[::-1]), 0, 2)).numpy()
    np.testing.assert_allclose(app.mix(pixels, pixels[::-1], "coarse"), mixed, atol=1e-4)
    direction = np.eye(sampler.latent_dim, dtype=np.float32)[0]
    fine = sampler.decode(sampler.edit(w, direction, 2.0, 2, 4)).numpy()
    np.testing.assert_allclose(app.edit(pixels, direction, 2.0, layers="fine"), fine, atol=1e-4)
    assert np.abs(fine - sampler.decode(sampler.edit(w, direction, 2.0)).numpy()).max() > 1e-4  # a range is not all


APP_EDITS = """
import sys
for name in ("tensorflow", "keras", "tf2onnx", "tensorflow_serving", "alae_tf"):
    sys.modules[name] = None  # any import of these now raises ImportError
import numpy as np
from serving.onnx_model import ALAEOnnx

export_dir, out = sys.argv[1:]
model = ALAEOnnx(export_dir)
pixels = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28, 1).astype(np.uint8)
np.savez(out, edit=model.edit(pixels, "0_to_1", [0.5, -1.0]), mix=model.mix(pixels, pixels[::-1], "all"),
         styles=model.decode_styles(np.ones((1, 1, 50), np.float32)))
assert sys.modules["tensorflow"] is None
"""


def test_the_app_edits_without_tensorflow(mlp, export_dir, tmp_path):
    sampler, saved, app, run = mlp
    result = subprocess.run([sys.executable, "-c", APP_EDITS, str(export_dir), str(tmp_path / "out.npz")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    pixels = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28, 1).astype(np.uint8)
    np.testing.assert_array_equal(outputs["edit"], app.edit(pixels, "0_to_1", [0.5, -1.0]))
    np.testing.assert_array_equal(outputs["mix"], app.mix(pixels, pixels[::-1], "all"))
    np.testing.assert_array_equal(outputs["styles"], app.decode_styles(np.ones((1, 1, 50), np.float32)))


def test_an_export_from_before_per_layer_styles_still_loads(export_dir, tmp_path):
    import shutil

    older = tmp_path / "older"
    shutil.copytree(layout.onnx_dir(export_dir, NAME, 1), older)
    (older / "decode_styles.onnx").unlink()
    metadata = json.loads((older / "metadata.json").read_text())
    for key in ("layer_ranges", "directions"):
        del metadata[key]
    (older / "metadata.json").write_text(json.dumps(metadata))
    app = ALAEOnnx(older)
    assert "decode_styles" not in app.signatures and "decode" in app.signatures
    pixels = real_images(2)
    assert app.reconstruct(pixels).shape == (2, 28, 28, 1) and app.directions.names == []
    with pytest.raises(ValueError, match="predates per-layer styles"):
        app.edit(pixels, np.eye(50, dtype=np.float32)[0], 1.0)
