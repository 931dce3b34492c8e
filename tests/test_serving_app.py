"""serving.onnx_model.ALAEOnnx, the app API: the same outputs as the TF SavedModel when run
where TensorFlow cannot be imported; input validation, chunking, interpolation, providers."""

import io
import json
import logging
import operator
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from exported_run import NAME, real_images, run_signature

from serving import contract, layout
from serving.onnx_model import ALAEOnnx

REPO = Path(__file__).resolve().parents[1]

APP_WITHOUT_TF = """
import sys
for name in ("tensorflow", "keras", "tf2onnx", "tensorflow_serving", "alae_tf"):
    sys.modules[name] = None  # any import of these now raises ImportError
import numpy as np
from serving.onnx_model import ALAEOnnx

export_dir, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
model = ALAEOnnx(export_dir)
np.savez(
    outputs_path,
    encode=model.encode(inputs["images"]),
    encode_uint8=model.encode(inputs["pixels"]),
    decode=model.decode(inputs["w"]),
    generate=model.generate(inputs["z"], truncation_psi=inputs["psi"]),
    generate_uint8=model.generate(inputs["z"], truncation_psi=inputs["psi"], as_uint8=True),
    reconstruct_uint8=model.reconstruct(inputs["pixels"], as_uint8=True),
    seeded=model.generate(n=3, seed=42),
)
assert "onnxruntime" in sys.modules and sys.modules["tensorflow"] is None
"""


@pytest.fixture(scope="module")
def model(export_dir):
    return ALAEOnnx(export_dir)


SHARED_POOL = """
import json, sys
import numpy as np
import onnxruntime
from serving.onnx_model import ALAEOnnx, share_one_thread_pool

export_dir, inputs_path, outputs_path, graph = sys.argv[1:]
inputs = np.load(inputs_path)
share_one_thread_pool(2)
share_one_thread_pool(2)  # the same size again: nothing happens
model = ALAEOnnx(export_dir)
np.savez(outputs_path, encode=model.encode(inputs["pixels"]), generate=model.generate(inputs["z"]),
         reconstruct=model.reconstruct(inputs["pixels"]))
refused = []
for attempt in (lambda: share_one_thread_pool(1), lambda: ALAEOnnx(export_dir, threads=2),
                lambda: onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])):
    try:
        attempt()
    except (ValueError, RuntimeError) as exc:
        refused.append(f"{type(exc).__name__}: {exc}")
print(json.dumps(refused))
"""


def test_one_shared_thread_pool_answers_as_a_pool_per_graph(export_dir, model, tmp_path):
    """share_one_thread_pool() is a setting of the whole process, so it runs in a child process: the
    same outputs; another size, or threads= per model, refused; and, as its docstring warns, ONNX
    Runtime then refuses a session with its own pool."""
    rng = np.random.default_rng(0)
    inputs = {"pixels": real_images(5), "z": rng.standard_normal((5, 50)).astype(np.float32)}
    np.savez(tmp_path / "inputs.npz", **inputs)
    graph = layout.find_onnx_version_dir(export_dir, None) / layout.onnx_file("encode")
    result = subprocess.run([sys.executable, "-c", SHARED_POOL, str(export_dir), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "outputs.npz"), str(graph)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    expected = {"encode": model.encode(inputs["pixels"]), "generate": model.generate(inputs["z"]),
                "reconstruct": model.reconstruct(inputs["pixels"])}
    for key, value in expected.items():
        np.testing.assert_allclose(outputs[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    refused = json.loads(result.stdout.splitlines()[-1])
    assert len(refused) == 3, refused
    assert refused[0] == "ValueError: this process already shares one ONNX Runtime thread pool of 2 threads; it cannot be resized"
    assert refused[1].startswith("ValueError: threads: this process runs ALAEOnnx on one shared thread pool")
    assert refused[2].startswith("RuntimeError") and "use_per_session_threads must be false" in refused[2]


def test_app_api_without_tensorflow_matches_the_saved_model(export_dir, saved, tmp_path):
    rng = np.random.default_rng(0)
    pixels = real_images(9)
    inputs = {
        "pixels": pixels, "images": contract.to_model_range(pixels), "w": rng.standard_normal((9, 50)).astype(np.float32),
        "z": rng.standard_normal((9, 50)).astype(np.float32), "psi": rng.uniform(0, 1.2, 9).astype(np.float32),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    result = subprocess.run([sys.executable, "-c", APP_WITHOUT_TF, str(export_dir), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "outputs.npz")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    generate = {"z": inputs["z"], "truncation_psi": inputs["psi"]}
    expected = {
        "encode": run_signature(saved, "encode", images=inputs["images"])["w"],
        "encode_uint8": run_signature(saved, "encode_uint8", images=pixels)["w"],
        "decode": run_signature(saved, "decode", w=inputs["w"])["images"],
        "generate": run_signature(saved, "generate", **generate)["images"],
        "generate_uint8": run_signature(saved, "generate_uint8", **generate)["images"],
        "reconstruct_uint8": run_signature(saved, "reconstruct_uint8", images=pixels)["images"],
    }
    for key, value in expected.items():
        assert outputs[key].dtype == value.dtype and outputs[key].shape == value.shape, key
        diff = np.abs(outputs[key].astype(np.float64) - value)
        if value.dtype == np.uint8:  # one level off only where a tiny float difference flips the rounding
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, key
        else:
            assert diff.max() <= 1e-4, key
    z = np.random.default_rng(42).standard_normal((3, 50), dtype=np.float32)
    np.testing.assert_allclose(outputs["seeded"], run_signature(saved, "generate", z=z, truncation_psi=np.ones(3, np.float32))["images"], atol=1e-4)


def test_signatures_are_the_saved_models_and_run_by_name(model, saved):
    assert set(model.signatures) | {"serving_default"} == set(saved.signatures)
    assert model.noise_shapes == [] and model.noise(3, seed=0) == []
    pixels = real_images(3)
    np.testing.assert_array_equal(model.run_signature("serving_default", {"images": contract.to_model_range(pixels)})["images"],
                                  model.reconstruct(pixels))
    w = model.encode(pixels)
    np.testing.assert_array_equal(model.decode(w, noise=model.noise(3)), model.decode(w))  # the MLP's noise is no noise
    assert json.loads(model.run_signature("metadata", {"row": np.zeros(2, np.int32)})["metadata_json"][1]) == model.metadata


def test_an_app_may_load_only_the_operations_it_uses(export_dir, model):
    encoder = ALAEOnnx(export_dir, operations=["encode"])
    assert list(encoder._sessions) == ["encode"] and set(encoder.signatures) == {"encode", "encode_uint8", "metadata"}
    pixels = real_images(3)
    np.testing.assert_array_equal(encoder.encode(pixels), model.encode(pixels))
    with pytest.raises(ValueError, match=r"decode is not loaded: this model was opened with operations=\['encode'\]"):
        encoder.decode(np.zeros((1, 50), np.float32))
    with pytest.raises(ValueError, match="decode_styles is not loaded"):
        encoder.edit(pixels, np.ones(50, np.float32), 1.0)
    assert sorted(ALAEOnnx(export_dir, operations="reconstruct")._sessions) == ["decode", "encode"]
    with pytest.raises(ValueError, match="operations: encoder; this export has decode, decode_styles, encode, generate"):
        ALAEOnnx(export_dir, operations=["encoder"])
    with pytest.raises(ValueError, match="operations: none given"):
        ALAEOnnx(export_dir, operations=[])


def test_large_batches_are_chunked_with_the_same_result(export_dir, model):
    small_chunks = ALAEOnnx(export_dir, max_batch_size=4)
    pixels = real_images(10)
    np.testing.assert_allclose(small_chunks.encode(pixels), model.encode(pixels), atol=1e-6)
    np.testing.assert_array_equal(small_chunks.generate(n=10, seed=1, as_uint8=True), model.generate(n=10, seed=1, as_uint8=True))


def test_interpolation_runs_from_a_to_b(model):
    pixels = real_images(4)
    path = model.interpolate(pixels[0], pixels[1], steps=5)
    assert path.shape == (5, 28, 28, 1) and path.dtype == np.float32
    ends = model.reconstruct(pixels[:2])
    np.testing.assert_allclose(path[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], ends[1], atol=1e-5)
    w = model.encode(pixels[:2])
    np.testing.assert_allclose(path[2], model.decode((w[:1] + w[1:]) / 2)[0], atol=1e-5)
    batch = model.interpolate(pixels[:2], pixels[2:], steps=3, as_uint8=True)
    assert batch.shape == (2, 3, 28, 28, 1) and batch.dtype == np.uint8
    # each row is its own pair's path, in order (a mutation mixing the pairs' frames went unnoticed)
    w_a, w_b = model.encode(pixels[:2]), model.encode(pixels[2:])
    for row in range(2):
        for step, t in enumerate((0.0, 0.5, 1.0)):
            expected = model.decode(w_a[row:row + 1] + t * (w_b[row:row + 1] - w_a[row:row + 1]), as_uint8=True)[0]
            assert np.abs(batch[row, step].astype(int) - expected).max() <= 1, (row, step)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.encode(np.zeros((2, 28, 28), np.uint8)), r"shape \[batch, 28, 28, 1\]"),
        (lambda m: m.encode(np.zeros((1, 96, 96, 3), np.uint8)), r"got \[1, 96, 96, 3\]; read_image\(path\) reads an image file"),
        (lambda m: m.read_image(b"not an image"), "^the image is not a readable PNG, JPEG, WebP or BMP image"),
        (lambda m: m.read_image(io.BytesIO(b"GIF89a" + bytes(20))), "^the image is not a readable"),
        (lambda m: m.read_image(io.StringIO("a.png")), "open it in binary mode"),
        (lambda m: m.read_image(3), "read_image takes a path, the file's bytes or a binary file object, got int"),
        (lambda m: m.edit(np.zeros((1, 28, 28, 1), np.uint8), np.full(50, np.nan), 1.0), "^direction contains NaN or infinite values$"),
        (lambda m: m.interpolate(np.zeros((28, 28, 1), np.uint8), np.zeros((2, 28, 28, 1), np.uint8)),
         r"a and b must both be one image \[H, W, C\] or both batches \[N, H, W, C\], got shapes \[28, 28, 1\] and \[2, 28, 28, 1\]"),
        (lambda m: m.encode(np.zeros((0, 28, 28, 1), np.uint8)), "empty batch"),
        (lambda m: m.encode(np.zeros((1, 28, 28, 1), np.int64)), "uint8 \\[0, 255\\] or float \\[-1, 1\\], got dtype int64"),
        (lambda m: m.encode(np.full((1, 28, 28, 1), 255.0, np.float32)), "send \\[0, 255\\] pixels as uint8"),
        (lambda m: m.encode(np.full((1, 28, 28, 1), np.nan, np.float32)), "NaN or infinite"),
        (lambda m: m.decode(np.zeros((1, 49), np.float32)), r"w must have shape \[batch, 50\]"),
        (lambda m: m.generate(), "either z or n"),
        (lambda m: m.generate(n=0), "n must be a positive integer"),
        (lambda m: m.generate(n=2, truncation_psi=[1.0, 0.5, 0.2]), "one per row"),
        (lambda m: m.generate(n=2, truncation_psi=np.inf), "truncation_psi contains NaN"),
        (lambda m: m.interpolate(np.zeros((28, 28, 1), np.uint8), np.zeros((28, 28, 1), np.uint8), steps=1), "steps"),
        (lambda m: m.generate(n=2, noise=[np.zeros((2, 4, 4, 1), np.float32)]), "takes none .its generator has no noise inputs"),
        (lambda m: m.run_signature("decode_noise", {"w": np.zeros((1, 50), np.float32)}), "unknown signature 'decode_noise'"),
        (lambda m: m.decode(np.zeros((1, 50), np.float32), noise=5), r"noise: a list of 0 noise images \[B, h, w, 1\] or None, got int"),
        (lambda m: m.run_signature("decode", {"z": np.zeros((1, 50), np.float32)}), "missing input.s. w; unknown input.s. z"),
        (lambda m: m.run_signature("encode_uint8", {"images": np.zeros((1, 28, 28, 1), np.float32)}), "takes uint8 images"),
        # These raised numpy's or Python's own errors (TypeError, or a ValueError naming nothing).
        (lambda m: m.run_signature("decode", [np.zeros((1, 50), np.float32)]), "inputs must be a dict"),
        (lambda m: m.generate(n=True), "n must be a positive integer, got True"),
        (lambda m: m.generate(n=2, seed=-1), "seed must be an integer >= 0 or None, got -1"),
        (lambda m: m.generate(n=2, seed=1.5), "seed must be an integer"),
        (lambda m: m.generate(np.zeros((2, 50), np.float32), seed=3), "seed draws z: pass it with n"),
        (lambda m: m.generate(n=2, truncation_psi=None), "truncation_psi .1 = no truncation. must be a real number or one per row"),
        # These ran (a string or a bool converted by numpy) or raised numpy's TypeError (complex).
        (lambda m: m.generate(n=2, truncation_psi="0.7"), "truncation_psi .* must be a real number or one per row, got '0.7'"),
        (lambda m: m.generate(n=2, truncation_psi=True), "truncation_psi .* must be a real number"),
        (lambda m: m.generate(n=2, truncation_psi=[1 + 2j, 1]), "truncation_psi .* must be a real number"),
        (lambda m: m.edit(real_images(1), m.directions.names[0], "1"), "strength must be a real number or one per row, got '1'"),
        (lambda m: m.noise(-1), "batch must be a positive integer, got -1"),
        (lambda m: m.noise(2.5), "batch must be a positive integer"),
        (lambda m: m.layer_range(None), "layers must be a layer-range name"),
        (lambda m: m.layer_range((0, 1, 2)), r"or \(start, stop\) integers"),
        (lambda m: m.layer_range((0.5, 1)), r"or \(start, stop\) integers"),
        (lambda m: m.layer_range((1, 1)), r"layer range \(1, 1\) is empty: expected start < stop <= 1"),
        (lambda m: m.mix(real_images(1), real_images(1), (0, 0)), r"layer range \(0, 0\) is empty"),
    ],
)
def test_bad_input_raises_a_clear_value_error(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model)


def test_read_image_brings_an_image_file_to_the_models_shape(model, tmp_path):
    """An app had no route from a photo to encode's input ([1, 96, 96, 3] for a 28x28x1 model was
    only a shape error); the studio and edit --images crop, resize and convert."""
    from PIL import Image

    pixels = real_images(2)
    Image.fromarray(pixels[0, ..., 0]).save(tmp_path / "digit.png")
    np.testing.assert_array_equal(model.read_image(tmp_path / "digit.png"), pixels[0])  # the model's shape: as it is
    np.testing.assert_array_equal(model.encode(np.stack([model.read_image(str(tmp_path / "digit.png"))])),
                                  model.encode(pixels[:1]))
    # a wide RGB photo: its centre square, resized and made grayscale (Pillow's L), as bytes
    wide = np.zeros((56, 112, 3), np.uint8)
    wide[:, 28:84] = np.repeat(np.repeat(pixels[1], 2, axis=0), 2, axis=1)  # the centre 56x56: digit 1 at twice its size
    wide[:, :28], wide[:, 84:] = 255, 255
    buffer = tmp_path / "wide.png"
    Image.fromarray(wide).save(buffer)
    expected = np.asarray(Image.fromarray(wide[:, 28:84]).resize((28, 28), Image.Resampling.LANCZOS).convert("L"))
    np.testing.assert_array_equal(model.read_image(buffer.read_bytes())[..., 0], expected)
    # an upload's bytes as a web framework hands them over: a binary file object, or a memoryview
    np.testing.assert_array_equal(model.read_image(io.BytesIO(buffer.read_bytes()))[..., 0], expected)
    np.testing.assert_array_equal(model.read_image(memoryview(buffer.read_bytes()))[..., 0], expected)
    with open(buffer, "rb") as file:
        np.testing.assert_array_equal(model.read_image(file)[..., 0], expected)
    with pytest.raises(ValueError, match=f"^{tmp_path / 'x.png'}: the file is empty"):
        (tmp_path / "x.png").write_bytes(b"")
        model.read_image(tmp_path / "x.png")
    with pytest.raises(ValueError, match=f"^{tmp_path}: a folder, not an image file"):
        model.read_image(tmp_path)
    Image.fromarray(wide).save(tmp_path / "wide.gif")
    with pytest.raises(ValueError, match="wide.gif: the file is an image in GIF format; read_image reads PNG, JPEG, WebP or BMP$"):
        model.read_image(tmp_path / "wide.gif")


def test_numbers_beyond_float32_are_refused_without_a_warning(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" was printed first
        with pytest.raises(ValueError, match=r"w holds values beyond float32's range \(largest \|value\|: 1e\+300\)"):
            model.decode(np.full((1, 50), 1e300))  # said "w contains NaN or infinite values"
    with pytest.raises(ValueError, match="w contains NaN or infinite values"):
        model.decode(np.full((1, 50), np.inf))
    with pytest.raises(ValueError, match="w: ragged nested lists"):  # numpy's "inhomogeneous shape" error before
        model.decode([[0.0] * 50, [0.0] * 49])
    with pytest.raises(ValueError, match="images: ragged nested lists"):
        model.encode([np.zeros((28, 28, 1)).tolist(), np.zeros((28, 27, 1)).tolist()])


def test_a_batch_limit_below_one_and_bad_thread_counts_are_refused(export_dir):
    with pytest.raises(ValueError, match="max_batch_size must be a positive integer, got 0"):
        ALAEOnnx(export_dir, max_batch_size=0)
    for threads in (-1, 2.5, "2", True):  # -1 was taken silently, 2.5 raised a pybind TypeError
        with pytest.raises(ValueError, match="threads must be an integer >= 0"):
            ALAEOnnx(export_dir, threads=threads)


def test_a_model_pickles_as_the_way_to_open_it_again(export_dir, model):
    """An ONNX Runtime session cannot be pickled: joblib, Ray and multiprocessing, which pass models
    as arguments, raised TypeError ... InferenceSession."""
    import multiprocessing
    import pickle

    z = np.random.default_rng(3).standard_normal((4, model.latent_dim)).astype(np.float32)
    small = ALAEOnnx(export_dir, max_batch_size=3, operations=["generate"])
    copy = pickle.loads(pickle.dumps(small))
    assert copy.path == small.path and copy.max_batch_size == 3 and sorted(copy.signatures) == sorted(small.signatures)
    np.testing.assert_array_equal(copy.generate(z), small.generate(z))
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh process: the files are opened again
        np.testing.assert_array_equal(pool.apply(operator.methodcaller("generate", z), (small,)), small.generate(z))


def test_as_uint8_is_true_or_false(model):
    w = np.zeros((1, model.latent_dim), np.float32)
    for value in ("no", 1, None):  # "no" returned uint8 images
        with pytest.raises(ValueError, match="as_uint8 must be True or False"):
            model.decode(w, as_uint8=value)


def test_provider_is_cpu_here_and_logged(export_dir, caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="serving.onnx_model"):
        model = ALAEOnnx(export_dir)
    assert model.provider == "CPUExecutionProvider" and "on CPUExecutionProvider" in caplog.text
    # With onnxruntime-gpu but no usable GPU, CUDA is tried and ONNX Runtime falls back to the CPU:
    # the user asked for nothing, so the warning does not say they did.
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        fallback = ALAEOnnx(export_dir)
    assert fallback.provider == "CPUExecutionProvider"
    assert ("onnxruntime-gpu is installed but CUDA did not start, so running on CPUExecutionProvider (no GPU, or not "
            "the CUDA 13 / cuDNN 9 it needs: for those, onnxruntime-gpu 1.31 runs on CUDA 13") in caplog.text
    assert "asked for" not in caplog.text
    caplog.clear()
    with pytest.warns(UserWarning, match="CUDAExecutionProvider") as tried:
        asked = ALAEOnnx(export_dir, providers=["CUDAExecutionProvider"])
    assert "asked for CUDAExecutionProvider, running on CPUExecutionProvider: onnxruntime-gpu 1.31 runs on CUDA 13" in caplog.text
    # Tried for the first graph only: it was tried (and logged by ONNX Runtime) for each of them.
    assert len(asked._sessions) > 1 and len([w for w in tried if "CUDAExecutionProvider" in str(w.message)]) == 1
    with pytest.raises(ValueError, match="no ONNX Runtime execution provider is called 'FooExecutionProvider'"):
        ALAEOnnx(export_dir, providers=["FooExecutionProvider"])  # it ran on the CPU, with 4 banners on stdout
    caplog.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a string was taken for a list of one-letter providers (20 warnings)
        assert ALAEOnnx(export_dir, providers="CPUExecutionProvider").provider == "CPUExecutionProvider"
    assert ALAEOnnx(export_dir, providers=[("CPUExecutionProvider", {})]).provider == "CPUExecutionProvider"  # (name, options)
    assert "asked for" not in caplog.text


def test_float_images_in_0_1_get_a_warning(model):
    """pixel / 255 is the most common float convention; the models read pixel / 127.5 - 1."""
    pixels = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    with pytest.warns(contract.UnitRangeWarning, match=r"float images are read as \[-1, 1\].*lie in \[0, 1\]"):
        model.encode(pixels / 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.encode(pixels / 127.5 - 1)
        model.encode(np.zeros((1, 28, 28, 1), np.float32))  # one flat grey level says nothing
        light = np.random.default_rng(1).integers(128, 256, (2, 28, 28, 1), dtype=np.uint8)
        model.encode(light)  # uint8 pixels are pixels: as floats in [-1, 1] these all lie in [0, 1]
        model.reconstruct(light)
        model.edit(light, np.ones(model.latent_dim, np.float32), 1.0)


def test_sessions_spin_only_while_running(export_dir):
    """Each graph's session has its own thread pool; idle spinning after a run would take the cores
    from the next graph of the same call (benchmarks/inference_latency.py's reconstruct rows)."""
    model = ALAEOnnx(export_dir, threads=1)
    for session in model._sessions.values():
        options = session.get_session_options()
        assert options.get_session_config_entry("session.force_spinning_stop") == "1"
        assert options.intra_op_num_threads == 1


def test_a_missing_export_is_named(tmp_path, export_dir, exported):
    with pytest.raises(FileNotFoundError, match="no ONNX export"):
        ALAEOnnx(tmp_path)
    # both were "no ONNX export (expected EXPORT, ...)" (an audit)
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'nope'}: no such file or directory$"):
        ALAEOnnx(tmp_path / "nope")
    run = exported[0]
    with pytest.raises(FileNotFoundError, match=r"a training run, not an export: export it first \(python -m export --run "):
        ALAEOnnx(run)
    both = tmp_path / "two"
    for name in ("a_model", "b_model"):
        shutil.copytree(export_dir / layout.ONNX / NAME, both / layout.ONNX / name)
    with pytest.raises(ValueError, match="models a_model, b_model: pick one by name"):
        ALAEOnnx(both)
    assert ALAEOnnx(both, name="b_model").metadata["model_name"] == NAME
    # a model's or a version's own directory ignored the name (another model served unnoticed)
    model_dir = export_dir / layout.ONNX / NAME
    for path in (model_dir, model_dir / "1"):
        with pytest.raises(ValueError, match=f"{path} is model '{NAME}', not 'b_model': pass 'b_model''s own directory"):
            ALAEOnnx(path, name="b_model")
        assert ALAEOnnx(path, name=NAME).metadata["model_name"] == NAME


def test_damaged_or_misplaced_exports_are_named(tmp_path, export_dir):
    """Each of these raised Python's own errors (a KeyError, a JSONDecodeError naming no file, a
    FileNotFoundError of a path that was never there, ONNX Runtime's InvalidProtobuf)."""
    version = tmp_path / "onnx" / NAME / "1"
    shutil.copytree(export_dir / layout.ONNX / NAME / "1", version)
    metadata = version / layout.ONNX_METADATA
    good = metadata.read_text()
    metadata.write_text(good[:40])
    with pytest.raises(ValueError, match=f"{metadata} is damaged .*; export the run again"):
        ALAEOnnx(version)
    metadata.write_text(json.dumps({key: value for key, value in json.loads(good).items() if key != "latent_dim"}))
    with pytest.raises(ValueError, match=f"{metadata} is damaged: it lacks latent_dim"):
        ALAEOnnx(version)
    # valid JSON of the wrong types was a TypeError from deep inside (the server printed a traceback)
    metadata.write_text(json.dumps({**json.loads(good), "image_shape": "28x28", "noise_inputs": None}))
    with pytest.raises(ValueError, match=f"{metadata} is damaged: image_shape must be \\[height, width, channels\\], "
                                         'got "28x28"'):
        ALAEOnnx(version)
    metadata.write_text(json.dumps({**json.loads(good), "truncation_psi": "0.7"}))
    with pytest.raises(ValueError, match=f'{metadata} is damaged: truncation_psi must be null or a number, got "0.7"'):
        ALAEOnnx(version)
    # metadata of another model than its graphs: ONNX Runtime's InvalidArgument at the first call before
    metadata.write_text(json.dumps({**json.loads(good), "latent_dim": 64}))
    with pytest.raises(ValueError, match=f"{version / 'encode.onnx'} does not match {metadata}: its w is "
                                         "\\[batch, 50\\], the metadata's \\[batch, 64\\]"):
        ALAEOnnx(version)
    metadata.write_text(good)
    graph = version / "generate.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{graph} cannot be loaded .*: the file is damaged or incomplete"):
        ALAEOnnx(version)
    metadata.unlink()
    with pytest.raises(FileNotFoundError, match=f"{metadata} is missing: .* not a complete export version"):
        ALAEOnnx(version.parent)
    with pytest.raises(FileNotFoundError, match="holds SavedModels .*: pass that, or the export directory"):
        ALAEOnnx(export_dir / layout.TF_SERVING / NAME)
    saved_model = layout.version_dirs(export_dir / layout.TF_SERVING / NAME)[-1][1]
    onnx_twin = export_dir / layout.ONNX / NAME / saved_model.name
    with pytest.raises(FileNotFoundError, match=f"{saved_model} is a SavedModel .* in {onnx_twin}: pass that"):
        ALAEOnnx(saved_model)



def test_the_newest_version_that_loads_is_opened_as_the_server_serves_it(tmp_path, export_dir, caplog):
    """An app opening EXPORT while a new version is copied in by hand (no metadata.json yet, or only
    some graphs) failed; it gets the version before, with a warning, as the HTTP server does."""
    model_dir = tmp_path / "onnx" / NAME
    shutil.copytree(export_dir / layout.ONNX / NAME / "1", model_dir / "1")
    (model_dir / "2").mkdir()
    (model_dir / "3").mkdir()
    shutil.copy(model_dir / "1" / layout.ONNX_METADATA, model_dir / "3")
    shutil.copy(model_dir / "1" / "encode.onnx", model_dir / "3")
    with caplog.at_level(logging.WARNING, logger="serving.onnx_model"):
        model = ALAEOnnx(tmp_path)
    assert model.version == 1 and model.skipped_versions == [model_dir / "3", model_dir / "2"]
    assert f"version 3 in {model_dir} cannot be loaded ({model_dir / '3' / 'decode.onnx'} is missing" in caplog.text
    assert "version 2 in" in caplog.text and "metadata.json is missing" in caplog.text and "using version 1" in caplog.text
    assert ALAEOnnx(model_dir / "1").skipped_versions == []
    shutil.rmtree(model_dir / "1")
    with pytest.raises(FileNotFoundError, match="3/decode.onnx is missing"):  # none loads: the newest one's error
        ALAEOnnx(tmp_path)
    # An int8 file missing names the flag that writes it.
    shutil.copytree(export_dir / layout.ONNX / NAME / "1", model_dir / "4")
    metadata = json.loads((model_dir / "4" / layout.ONNX_METADATA).read_text())
    (model_dir / "4" / layout.ONNX_METADATA).write_text(json.dumps({**metadata, "onnx_variants": ["float32", "int8"]}))
    with pytest.raises(FileNotFoundError, match="export the run again with python -m export --onnx-int8"):
        ALAEOnnx(model_dir / "4", variant="int8")

def test_versions_are_told_by_their_directory_names(tmp_path, export_dir):
    """As TF-Serving reads them: a zero-padded name is its number, and a version copied in by hand
    under a new number is that number, whatever its metadata says."""
    model_dir = tmp_path / "onnx" / NAME
    for name in ("1", "00000012", "3"):
        shutil.copytree(export_dir / layout.ONNX / NAME / "1", model_dir / name)
    assert layout.version_dirs(model_dir) == [(1, model_dir / "1"), (3, model_dir / "3"), (12, model_dir / "00000012")]
    model = ALAEOnnx(tmp_path)
    assert model.path == model_dir / "00000012" and model.version == 12 and model.metadata["version"] == 1

