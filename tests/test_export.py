"""python -m export on a small real-MNIST run: layout, signatures vs the live nets, truncation,
ONNX parity, TF-Serving files and CLI errors.

`exported_model` builds the run and its export once per test session (the serving tests import
it from here); it caches them under pytest's base temp directory."""

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import export.__main__ as export_cli
import export.onnx_files
import export.verify
from alae_tf.errors import ALAEError
from alae_tf.inference import Sampler
from alae_tf.run_dir import load_run
from exported_run import NAME, copied_onnx_files, real_images, run_signature
from serving import contract, layout

BATCHES = (1, 7, 64)


@pytest.fixture(scope="session")
def live(exported):
    return load_run(exported[0])


def test_export_layout_and_metadata(exported, live):
    out = exported[1]
    config, model = live
    version_dir = layout.saved_model_dir(out, NAME, 1)
    for path in ("saved_model.pb", "variables/variables.index", layout.WARMUP_FILE, layout.SAVED_MODEL_METADATA):
        assert (version_dir / path).is_file(), path
    assert contract.onnx_graphs(contract.signatures([28, 28, 1], 50)) == ["encode", "decode", "generate", "decode_styles"]
    assert sorted(p.name for p in layout.onnx_dir(out, NAME, 1).glob("*.onnx")) == [
        "decode.onnx", "decode_styles.onnx", "encode.onnx", "generate.onnx"]
    metadata = json.loads((version_dir / layout.SAVED_MODEL_METADATA).read_text())
    assert metadata == layout.read_metadata(layout.onnx_dir(out, NAME, 1))
    assert metadata["training_step"] == int(model.trained_steps.numpy()) == 20
    assert metadata["image_shape"] == [28, 28, 1] and metadata["latent_dim"] == config.model.latent_dim
    assert metadata["value_range"] == [-1.0, 1.0] and metadata["ema"] is True and metadata["preset"] == "mnist_small"
    assert metadata["checkpoint"].endswith("ckpt-20") and metadata["onnx_opset"] == 17
    assert metadata["noise_inputs"] == [] and metadata["num_styles"] == 1 and metadata["w_avg_beta"] == config.train.w_avg_beta
    assert "running mean" in metadata["truncation"] and "w_avg_samples" not in metadata
    assert not list(out.glob(".staging*"))
    for path in layout.onnx_dir(out, NAME, 1).glob("*.onnx"):  # an app on plain ONNX Runtime reads it there
        props = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        assert json.loads(props["alae_tf.metadata"]) == metadata and props["alae_tf.graph"] == path.stem, path.name
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert {value.shape[0] for value in [*session.get_inputs(), *session.get_outputs()]} == {"batch"}, path.name


def test_tf_serving_files(exported):
    out = exported[1] / layout.TF_SERVING
    config = (out / "models.config").read_text()
    assert f'name: "{NAME}"' in config and f'base_path: "/models/{NAME}"' in config and 'model_platform: "tensorflow"' in config
    assert f'base_path: "{(out / NAME).resolve()}"' in (out / "models.host.config").read_text()
    batching = (out / "batching_parameters.txt").read_text()  # requests as large as serving.http's, run as 64s
    assert "max_batch_size { value: 256 }" in batching and "max_execution_batch_size { value: 64 }" in batching
    assert "enable_large_batch_splitting { value: true }" in batching


def test_each_signature_is_traced_once_and_is_also_an_attribute_of_the_saved_model(live, tmp_path):
    """Keras' ExportArchive let TensorFlow trace every function twice more while saving (a quarter
    of a small 128x128 model's export time): the written SavedModel holds the concrete functions
    traced once."""
    from export import savedmodel

    traces = {}

    def counted(name, implementation):
        def function(*inputs):
            traces[name] = traces.get(name, 0) + 1
            return implementation(*inputs)
        return function

    sampler = Sampler.from_model(live[1])
    implementations = {name: counted(name, implementation)
                       for name, implementation in savedmodel.operation_implementations(sampler, "{}").items()}
    signatures = contract.signatures([28, 28, 1], sampler.latent_dim)
    savedmodel.write_saved_model(savedmodel.traced_functions(implementations, signatures), str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    assert sum(traces.values()) == len(signatures) and set(traces) == {s.operation.name for s in signatures.values()}
    assert set(loaded.signatures) == set(signatures) | {"serving_default"}
    images = tf.constant(contract.to_model_range(real_images(3)))
    np.testing.assert_array_equal(loaded.encode(images=images)["w"], loaded.signatures["encode"](images=images)["w"])
    np.testing.assert_allclose(loaded.encode(images=images)["w"], sampler.encode(images), atol=1e-5)


def test_signatures_follow_the_contract(saved):
    expected = contract.signatures([28, 28, 1], 50)
    assert set(saved.signatures) == set(expected) | {"serving_default"}
    for name, signature in [*expected.items(), ("serving_default", expected["reconstruct"])]:
        concrete = saved.signatures[name]
        inputs = concrete.structured_input_signature[1]
        assert {k: (v.dtype.name, tuple(v.shape)) for k, v in inputs.items()} == {
            s.name: (s.dtype, (None, *s.shape)) for s in signature.inputs
        }, name
        outputs = concrete.structured_outputs
        assert {k: (v.dtype.name, tuple(v.shape)) for k, v in outputs.items()} == {
            s.name: (s.dtype, (None, *s.shape)) for s in signature.outputs
        }, name


@pytest.mark.parametrize("batch", BATCHES)
def test_signatures_equal_the_live_ema_nets(saved, live, batch):
    _, model = live
    images_uint8 = real_images(batch)
    images = contract.to_model_range(images_uint8)
    z = np.random.default_rng(batch).standard_normal((batch, 50)).astype(np.float32)
    w = model.encoder(images).numpy()
    decoded = model.generator_ema(w).numpy()
    generated = model.generator_ema(model.mapping_ema(z)).numpy()
    ones = np.ones(batch, np.float32)

    np.testing.assert_allclose(run_signature(saved, "encode", images=images)["w"], w, atol=1e-5)
    np.testing.assert_allclose(run_signature(saved, "encode_uint8", images=images_uint8)["w"], w, atol=1e-5)
    np.testing.assert_allclose(run_signature(saved, "decode", w=w)["images"], decoded, atol=1e-5)
    np.testing.assert_allclose(run_signature(saved, "reconstruct", images=images)["images"], decoded, atol=1e-5)
    np.testing.assert_allclose(run_signature(saved, "serving_default", images=images)["images"], decoded, atol=1e-5)
    np.testing.assert_allclose(run_signature(saved, "generate", z=z, truncation_psi=ones)["images"], generated, atol=1e-5)
    # uint8 outputs are the float outputs rounded and clipped (one level off where a 1e-6 float
    # difference flips the rounding, which must stay rare).
    for name, inputs, float_images in [
        ("decode_uint8", {"w": w}, decoded),
        ("reconstruct_uint8", {"images": images_uint8}, decoded),
        ("generate_uint8", {"z": z, "truncation_psi": ones}, generated),
    ]:
        pixels = run_signature(saved, name, **inputs)["images"]
        assert pixels.dtype == np.uint8 and pixels.shape == (batch, 28, 28, 1)
        levels = np.abs(pixels.astype(int) - contract.to_uint8(float_images).astype(int))
        assert levels.max() <= 1 and (levels > 0).mean() < 1e-3, name
    varies = generated.std(axis=0).max() if batch > 1 else generated.std()  # with z; one image across its pixels
    assert varies > 1e-2  # not a degenerate (constant or all-zero) net


def test_truncation_pulls_towards_the_running_w_avg(saved, live):
    _, model = live
    z = np.random.default_rng(3).standard_normal((5, 50)).astype(np.float32)
    w_avg = model.mapping_ema.w_avg.numpy()  # F's running mean of w from training
    assert np.abs(w_avg).max() > 1e-3
    psi = np.array([0.0, 0.25, 0.5, 1.0, 1.5], np.float32)
    w = w_avg + psi[:, None] * (model.mapping_ema(z).numpy() - w_avg)
    images = run_signature(saved, "generate", z=z, truncation_psi=psi)["images"]
    np.testing.assert_allclose(images, model.generator_ema(w).numpy(), atol=1e-4)
    at_zero = run_signature(saved, "generate", z=z, truncation_psi=np.zeros(5, np.float32))["images"]
    np.testing.assert_allclose(at_zero, np.broadcast_to(at_zero[:1], at_zero.shape), atol=1e-6)  # psi 0: every z -> G(w_avg)


@pytest.mark.parametrize("psi", [1.0, 0.7, 0.3, 0.0])
def test_exported_generate_is_the_restored_samplers_generate(exported, saved, live, psi):
    """The Sampler of the restored run and both exported forms give the same images for the same z and psi."""
    _, model = live
    sampler = Sampler.from_model(model)
    z = np.random.default_rng(11).standard_normal((6, 50)).astype(np.float32)
    expected = sampler.generate(z, psi).numpy()
    psi_rows = np.full(6, psi, np.float32)
    np.testing.assert_allclose(run_signature(saved, "generate", z=z, truncation_psi=psi_rows)["images"], expected, atol=1e-5)
    session = onnxruntime.InferenceSession(str(layout.onnx_dir(exported[1], NAME, 1) / layout.onnx_file("generate")),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["images"], {"z": z, "truncation_psi": psi_rows})[0], expected, atol=1e-4)
    if psi != 1.0:  # truncation really moves the images
        assert np.abs(expected - sampler.generate(z, 1.0).numpy()).max() > 1e-2


def test_metadata_signature_returns_the_metadata(saved, exported):
    answer = run_signature(saved, "metadata", row=np.zeros(3, np.int32))["metadata_json"]
    assert len(answer) == 3
    assert json.loads(answer[0].decode()) == layout.read_metadata(layout.onnx_dir(exported[1], NAME, 1))


@pytest.mark.parametrize("batch", BATCHES)
def test_onnx_matches_the_saved_model(exported, saved, batch):
    directory = layout.onnx_dir(exported[1], NAME, 1)
    rng = np.random.default_rng(10 + batch)
    cases = {
        "encode": {"images": contract.to_model_range(real_images(batch))},
        "decode": {"w": rng.standard_normal((batch, 50)).astype(np.float32)},
        "generate": {"z": rng.standard_normal((batch, 50)).astype(np.float32),
                     "truncation_psi": rng.uniform(0, 1.2, batch).astype(np.float32)},
    }
    for name, inputs in cases.items():
        session = onnxruntime.InferenceSession(str(directory / layout.onnx_file(name)), providers=["CPUExecutionProvider"])
        assert sorted(i.name for i in session.get_inputs()) == sorted(inputs)
        output_names = [o.name for o in session.get_outputs()]
        actual = dict(zip(output_names, session.run(output_names, inputs)))
        expected = run_signature(saved, name, **inputs)
        assert actual.keys() == expected.keys()
        for key in expected:
            assert actual[key].shape == expected[key].shape
            assert np.abs(actual[key] - expected[key]).max() <= 1e-4, (name, key)


def test_warmup_requests_are_prediction_logs_for_every_signature(exported, saved):
    path = layout.saved_model_dir(exported[1], NAME, 1) / layout.WARMUP_FILE
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert 0 < len(logs) <= 1000
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(contract.signatures([28, 28, 1], 50))
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == NAME
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = run_signature(saved, request.model_spec.signature_name, **inputs)
        assert all(len(v) == len(next(iter(inputs.values()))) for v in outputs.values())


def test_no_ema_exports_the_live_nets_and_versions_are_protected(exported, live, tmp_path, capsys, monkeypatch):
    run, export_dir = exported
    _, model = live
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(run), "--out", str(out), "--no-ema", "--name", "live"]) == 0
    loaded = tf.saved_model.load(str(layout.saved_model_dir(out, "live", 1)))
    z = np.random.default_rng(5).standard_normal((7, 50)).astype(np.float32)
    images = run_signature(loaded, "generate", z=z, truncation_psi=np.ones(7, np.float32))["images"]
    np.testing.assert_allclose(images, model.generator(model.mapping(z)).numpy(), atol=1e-5)
    assert np.abs(images - model.generator_ema(model.mapping_ema(z)).numpy()).max() > 1e-3
    assert layout.read_metadata(layout.onnx_dir(out, "live", 1))["ema"] is False
    # Each stage says it starts: an export was silent for a minute between its first line and its figures.
    stages = [line.split(":")[0].split(" ")[0] for line in capsys.readouterr().out.splitlines()]
    assert stages == ["building", "writing", "converting", "checking", "SavedModel", "ONNX", "written"], stages

    assert export_cli.main(["--run", str(run), "--out", str(out), "--name", "live", "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "version 1 of live already exists" in err and err.count("\n") == 1
    with monkeypatch.context() as patched:  # the session export's ONNX files: the same run, checkpoint and EMA nets
        copied_onnx_files(patched, export_dir)
        assert export_cli.main(["--run", str(run), "--out", str(out), "--name", "live", "--version", "1", "--overwrite"]) == 0
    assert layout.read_metadata(layout.onnx_dir(out, "live", 1))["ema"] is True
    # The checkpoint's run is --run's default; a file of the checkpoint (as a shell completes it) names it too.
    assert export_cli.main(["--checkpoint", str(run / "checkpoints" / "ckpt-10.index"), "--out", str(out), "--name", "live"]) == 0
    assert layout.versions(out / layout.TF_SERVING / "live") == [1, 2]
    metadata = layout.read_metadata(layout.onnx_dir(out, "live", 2))
    assert (metadata["training_step"], metadata["checkpoint"]) == (10, "ckpt-10")


def test_a_new_version_of_another_shape_is_refused_before_any_work(exported, tmp_path, capsys, monkeypatch):
    """A config copied from folder64 for 32x32 kept `preset: folder64`: its export became a new
    version of alae_folder64, and the server following that name switched from 64x64 to 32x32
    images without a word (an operator audit, 2026-12-06)."""
    run, export_dir = exported
    out = tmp_path / "export"
    shutil.copytree(layout.onnx_dir(export_dir, NAME, 1), layout.onnx_dir(out, NAME, 1))
    metadata_file = layout.onnx_dir(out, NAME, 1) / layout.ONNX_METADATA
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**metadata, "image_shape": [64, 64, 3], "latent_dim": 32}))
    assert export_cli.main(["--run", str(run), "--out", str(out)]) == 2
    out_text, err = capsys.readouterr()
    assert err == (f"error: {NAME}: version 1 in {out} is another model (64x64x3 images, latent 32, 1 style inputs; "
                   f"this run's: 28x28x1 images, latent 50, 1 style inputs): a server of {NAME} would switch its "
                   f"clients to it. Export this one under its own name (--name alae_{run.name}) or into another --out\n")
    assert "building" not in out_text and layout.versions(out / layout.ONNX / NAME) == [1]
    metadata_file.write_text(json.dumps(metadata))  # the same shape: a new version as usual
    copied_onnx_files(monkeypatch, export_dir)
    assert export_cli.main(["--run", str(run), "--out", str(out), "--version", "3"]) == 0
    assert layout.versions(out / layout.ONNX / NAME) == [1, 3]


def test_a_failed_parity_check_exits_1_and_publishes_nothing(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export.verify, "ONNX_TOLERANCE", -1.0)  # any diff, even 0, now fails
    copied_onnx_files(monkeypatch, exported[1])  # what tf2onnx writes for this run: the check is under test
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: export check failed") and "max abs diff" in err and "encode random b1" in err
    assert not out.exists()  # made by the export, and left empty


def test_a_full_disk_exits_2_with_one_line_and_publishes_nothing(exported, tmp_path, capsys, monkeypatch):
    """tf2onnx's own file write fails for want of space (an OSError without a file name); it was a
    traceback, exit 1."""
    def write_on_a_full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export.onnx_files, "write_onnx_files", write_on_a_full_disk)
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: no space left on the disk, writing into {out}; nothing was published: "
                                       "free some space and run the command again\n")
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--run", "{tmp}/nowhere"], "nowhere: no such directory"),
        (["--run", "{tmp}"], "not a training run (no config.yaml)"),
        (["--run", "{run}", "--checkpoint", "{run}/checkpoints/ckpt-999"], "ckpt-999: no such checkpoint"),
        (["--run", "{run}", "--checkpoint", "{run}/checkpoints"], "checkpoints: a directory; name one checkpoint in it"),
        (["--checkpoint", "{run}/checkpoints"], "checkpoints: a directory; name one checkpoint in it"),
        # Its weights would be published with this run's name, data and directions.
        (["--run", "{run}", "--checkpoint", "{copy}/checkpoints/ckpt-20"], "ckpt-20: not a checkpoint of the run"),
        (["--run", "{run}", "--version", "0"], "--version must be a positive integer"),
        # TF-Serving would skip the version (no servable versions); serving.http served it
        (["--run", "{run}", "--version", str(2**63)], "up to 2^63 - 1 (TF-Serving reads a version as a signed 64-bit"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(exported, tmp_path, capsys, flags, message):
    copy = shutil.copytree(exported[0], tmp_path / "copy")  # another run
    flags = [f.format(tmp=tmp_path, run=exported[0], copy=copy) for f in flags]
    assert export_cli.main([*flags, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_every_command_refuses_a_checkpoint_of_another_run(exported, tmp_path):
    """evaluate, edit and project load a run through load_run, as export does."""
    copy = shutil.copytree(exported[0], tmp_path / "copy")
    with pytest.raises(ALAEError, match="not a checkpoint of the run"):
        load_run(exported[0], str(copy / "checkpoints" / "ckpt-20"))
    _, model = load_run(copy, str(copy / "checkpoints" / "ckpt-10.data-00000-of-00001"))
    assert model.step == 10
    assert load_run(copy, "ckpt-10")[1].step == 10  # a bare name is the run's own ("not a checkpoint of the run" before)
    with pytest.raises(ALAEError, match=r"ckpt-7: no such checkpoint \(expected .*copy/checkpoints/ckpt-7.index\)"):
        load_run(copy, "ckpt-7")


def test_an_out_that_is_a_file_exits_2_with_one_line(exported, tmp_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("not a folder")
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write into the export directory {out}: Not a directory\n"
    assert out.read_text() == "not a folder"


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_cli.parse_args(["--help"])
    assert exit_info.value.code == 0 and "usage: python -m export" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    ([], "pass --run RUN or --checkpoint RUN/checkpoints/ckpt-N"),
    (["--checkpoint", "ckpt-20"], "--checkpoint ckpt-20 names no run: pass --run RUN too, or the path RUN/checkpoints/ckpt-20"),
])
def test_a_checkpoint_without_its_run_is_refused_naming_what_to_pass(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_cli.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("out", ["", "exports"])
def test_an_export_into_its_own_run_is_refused(exported, capsys, out):
    """It wrote onnx/ and tf_serving/ into the run directory (an audit)."""
    run = exported[0]
    with pytest.raises(SystemExit) as exit_info:
        export_cli.parse_args(["--run", str(run), "--out", str(run / out)])
    assert exit_info.value.code == 2
    assert f"--out {run / out} is inside the run {run}: an export is served and shipped apart" in capsys.readouterr().err


def test_a_checkpoint_path_names_its_run(tmp_path):
    assert export_cli.parse_args(["--checkpoint", str(tmp_path / "run" / "checkpoints" / "ckpt-20")]).run == tmp_path / "run"
    assert export_cli.parse_args(["--run", "r", "--checkpoint", "ckpt-20"]).run == Path("r")


@pytest.mark.parametrize("signum, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_stop_signal_during_the_export_publishes_nothing_and_leaves_nothing(exported, tmp_path, capsys, monkeypatch,
                                                                               signum, code, name):
    """SIGTERM ended the export without a word and left OUT/.staging-NAME-VERSION-PID behind."""
    copied_onnx_files(monkeypatch, exported[1])
    real_write = export.onnx_files.write_onnx_files

    def write_then_stop(*args, **kwargs):
        real_write(*args, **kwargs)
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(export.onnx_files, "write_onnx_files", write_then_stop)
    handler = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out)]) == code
    assert capsys.readouterr().err == f"\ninterrupted ({name}); nothing was published\n"
    assert not out.exists() and signal.getsignal(signal.SIGTERM) == handler
