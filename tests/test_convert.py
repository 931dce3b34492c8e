"""Official ALAE checkpoints -> alae_tf runs, against outputs of the official code itself.

The fixture (tests/fixtures/official, made by make_official_reference.py under torch with the
official net.py) is a small random StyleALAE reaching 128x128, so the fused resampling
convolutions run; these tests need no torch.
"""

import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from alae_tf import atomic_file, convert, torch_files
from alae_tf.config import load_preset
from alae_tf.errors import ALAEError
from alae_tf.inference import Sampler
from alae_tf.official import PUBLISHED, published_config
from alae_tf.run_dir import checkpoint_step, load_run, read_run_config
from alae_tf.run_layout import RunDir
from alae_tf.schedule import phases

FIXTURE = Path(__file__).parent / "fixtures" / "official"
TOLERANCE = 1e-4  # relative to the largest |output|
NOISE_INPUTS = 12  # 2 per level, 6 levels


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(1e-12, np.max(np.abs(expected))))


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURE / "reference.npz"))


def convert_file(name, out):
    assert convert.main(["--checkpoint", str(FIXTURE / name), "--config", str(FIXTURE / "config.yaml"),
                         "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def converted_pth(tmp_path_factory):
    """model.pth converted once (~5 s); a test that changes the run changes a copy (`copy_of`)."""
    return convert_file("model.pth", tmp_path_factory.mktemp("converted") / "run")


@pytest.fixture(scope="module", params=["model.pth", "model_legacy.pth"])
def converted(request, tmp_path_factory):
    if request.param == "model.pth":
        return request.getfixturevalue("converted_pth")
    return convert_file(request.param, tmp_path_factory.mktemp("converted") / "run")


@pytest.fixture(scope="module")
def loaded(converted):
    """load_run of `converted`, once per checkpoint file (read-only: a test that changes the run loads its own)."""
    return load_run(converted)


def copy_of(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "run"))


def saved_step(run):
    """The step of the run's newest checkpoint, read from its name (ckpt-N)."""
    return checkpoint_step(tf.train.latest_checkpoint(str(Path(run) / "checkpoints")))


def test_the_converted_run_computes_what_the_official_code_computes(loaded, reference):
    config, model = loaded
    assert config.model.backbone == "style_official" and config.model.image_shape == [128, 128, 3]
    sampler = Sampler.from_model(model)  # the smoothed nets (*_s), as the official figures use
    noise = [reference[f"noise_{i:02d}"] for i in range(NOISE_INPUTS)]
    errors = {
        "F": relative_error(sampler.map(reference["z"]), reference["f_of_z"]),
        "E": relative_error(sampler.encode(reference["images"]), reference["e_of_x"]),
        "D": relative_error(model.discriminator_ema(sampler.encode(reference["images"])), reference["d_of_e"]),
        "G(w), noise off": relative_error(sampler.decode(reference["w"]), reference["g_of_w"]),
        "G(per-layer styles)": relative_error(sampler.decode(reference["styles"]), reference["g_of_styles"]),
        "G(w), given noise": relative_error(sampler.decode(reference["w"], noise=noise), reference["g_of_w_noise"]),
        "G(F(z)) truncated": relative_error(sampler.generate(reference["z"], float(reference["truncation_psi"])),
                                            reference["g_of_z_truncated"]),
        "G mid-fade": relative_error(model.generator_ema(sampler.styles(reference["w"]), level=2, blend=0.5),
                                     reference["g_of_w_mid_fade"]),
        "E mid-fade": relative_error(model.encoder_ema(reference["images_mid"], level=2, blend=0.5),
                                     reference["e_of_x_mid_fade"]),
    }
    print("relative error vs the official code:", {key: f"{value:.2g}" for key, value in errors.items()})  # figures for -s
    assert max(errors.values()) < TOLERANCE, errors
    np.testing.assert_allclose(model.mapping_ema.w_avg.numpy(), reference["w_avg"], rtol=1e-6)
    # The live nets come from the checkpoint's live copies, which differ from the smoothed ones.
    assert relative_error(Sampler.from_model(model, use_ema=False).encode(reference["images"]), reference["e_of_x"]) > 1e-2


def test_a_converted_encoders_style_layers_step_at_the_official_rate(loaded):
    """The official EncodeBlock's style_1 / style_2 are lreq.Linear at its default gain sqrt(2), whose
    weight is used times std = gain / sqrt(in_features): Adam steps the stored weight in both codes, so
    a fine-tune moves them as the official one does only at that scale (at gain 1, before 2026-12-05,
    1/sqrt(2) of the official steps: E 29% of an update apart after one update I, an audit measured)."""
    config, model = loaded
    assert config.model.encoder_style_gain == pytest.approx(math.sqrt(2.0))
    for encoder in (model.encoder, model.encoder_ema):
        for block in encoder.blocks:
            for style in (block.style_1, block.style_2):
                assert style.runtime_scale == pytest.approx(math.sqrt(2.0) / math.sqrt(style.kernel.shape[0]))


@pytest.mark.parametrize("converted", ["model.pth", pytest.param("model_legacy.pth", marks=pytest.mark.slow)],
                         indirect=True)
def test_the_exported_model_matches_the_official_code(converted, loaded, reference, tmp_path):
    """The SavedModel signatures and ONNX graphs this comparison needs, written by the functions
    python -m export builds every signature and graph with (export.savedmodel, export.onnx_files):
    tf2onnx converts three 128x128 graphs, 23 s on 2 CPU cores, where the whole export (17
    signatures, 7 graphs, its checks and warm-up requests) took 75 s (AVX2 EPYC, 2026-12-08). The
    legacy file's run is the same model."""
    import onnxruntime

    from export import onnx_files, savedmodel
    from serving import contract

    sampler = Sampler.from_model(loaded[1])  # the EMA nets, as python -m export takes them
    every = contract.signatures(sampler.image_shape, sampler.latent_dim, sampler.noise_shapes, sampler.num_styles)
    # reconstruct: write_saved_model's serving_default (its graphs are encode and decode)
    signatures = {name: every[name] for name in ("encode", "decode", "decode_noise", contract.DEFAULT_SIGNATURE)}
    endpoints = savedmodel.traced_functions(savedmodel.operation_implementations(sampler, "{}"), signatures)
    savedmodel.write_saved_model(endpoints, str(tmp_path / "saved_model"))
    onnx_paths = onnx_files.write_onnx_files(endpoints, signatures, tmp_path / "onnx", "{}")
    assert sorted(onnx_paths) == ["decode", "decode_noise", "encode"]
    saved = tf.saved_model.load(str(tmp_path / "saved_model"))

    def run_onnx(graph, **inputs):
        session = onnxruntime.InferenceSession(str(onnx_paths[graph]), providers=["CPUExecutionProvider"])
        return session.run(None, inputs)[0]

    images, w = reference["images"], reference["w"]
    noise = {f"noise_{i:02d}": reference[f"noise_{i:02d}"] for i in range(NOISE_INPUTS)}
    encode_tf = saved.signatures["encode"](images=tf.constant(images))["w"]
    decode_tf = saved.signatures["decode"](w=tf.constant(w))["images"]
    decode_noise_tf = saved.signatures["decode_noise"](w=tf.constant(w), **{k: tf.constant(v) for k, v in noise.items()})["images"]
    errors = {
        "encode (SavedModel)": relative_error(encode_tf, reference["e_of_x"]),
        "encode (ONNX)": relative_error(run_onnx("encode", images=images), reference["e_of_x"]),
        "decode (SavedModel)": relative_error(decode_tf, reference["g_of_w"]),  # the official noise-off stand-in
        "decode (ONNX)": relative_error(run_onnx("decode", w=w), reference["g_of_w"]),
        "decode_noise (SavedModel)": relative_error(decode_noise_tf, reference["g_of_w_noise"]),
        "decode_noise (ONNX)": relative_error(run_onnx("decode_noise", w=w, **noise), reference["g_of_w_noise"]),
    }
    print("relative error vs the official code:", {key: f"{value:.2g}" for key, value in errors.items()})  # figures for -s
    assert max(errors.values()) < TOLERANCE, errors


def run_convert(tmp_path, capsys, checkpoint, config):
    out = tmp_path / "run"
    code = convert.main(["--checkpoint", str(checkpoint), "--config", str(config), "--out", str(out)])
    return code, capsys.readouterr().err, out


def test_a_config_that_does_not_match_names_every_mismatching_tensor(tmp_path, capsys):
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    config["MODEL"]["MAX_CHANNEL_COUNT"] = 32
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(config))
    code, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", tmp_path / "wider.yaml")
    assert code == 2 and not out.exists() and not list(tmp_path.glob(".run*"))
    assert err.startswith("error: ") and "does not match this config" in err
    assert "generator.const: shape [1, 16, 4, 4], this config needs [1, 32, 4, 4]" in err
    # E's tensors under the checkpoint's name for it (they read "encoder.", a name the file has not)
    assert "discriminator.encode_block.4.conv_1.weight: shape [16, 16, 3, 3], this config needs [32, 32, 3, 3]" in err
    assert "encoder." not in err


def test_a_run_converted_before_the_kernel_layout_change_is_refused_with_the_fix(converted_pth, tmp_path):
    """Converted runs written before 2026-12-03 stored G's 128x128 upconv kernel as [3, 3, out, in]:
    such a checkpoint (this one rewritten so) is refused with the command that fixes it."""
    run = copy_of(converted_pth, tmp_path)
    prefix = tf.train.latest_checkpoint(str(run / "checkpoints"))
    reader = tf.train.load_checkpoint(prefix)
    tensors = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    upconvs = [key for key in tensors if "upconv/kernel/.ATTRIBUTES" in key and tensors[key].shape[2] != tensors[key].shape[3]]
    assert upconvs
    for key in upconvs:
        tensors[key] = np.ascontiguousarray(np.transpose(tensors[key], (0, 1, 3, 2)))
    for path in run.glob("checkpoints/" + Path(prefix).name + ".*"):
        path.unlink()
    keys = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
                      tensors=[tensors[key] for key in keys])
    with pytest.raises(ALAEError, match="convert the official checkpoint again"):
        load_run(run)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["MODEL"].update(LATENT_SPACE_SIZ=8), "unknown MODEL key(s) LATENT_SPACE_SIZ"),
    (lambda c: c["MODEL"].update(ENCODER="EncoderWithFC"), "MODEL.ENCODER 'EncoderWithFC' is not supported"),
    (lambda c: c.pop("MODEL"), "not an official ALAE config (expected a MODEL: section)"),
    (lambda c: (c.clear(), c.update(load_preset("mnist_style32").to_dict())), "an alae_tf run config, not an official"),
    # a traceback (int("abc")), or an error naming image_shape instead of the key
    (lambda c: c["MODEL"].update(LAYER_COUNT="abc"), "MODEL.LAYER_COUNT must be an integer >= 1, got 'abc'"),
    (lambda c: c["MODEL"].update(LAYER_COUNT=-3), "MODEL.LAYER_COUNT must be an integer >= 1, got -3"),
    (lambda c: c["MODEL"].update(TRUNCATIOM_PSI=".7"), "MODEL.TRUNCATIOM_PSI must be a finite number, got '.7'"),
    (lambda c: c.update(TRAIN={"LOD_2_BATCH_8GPU": "many"}), "a TRAIN or DATASET value is not of the official config's kind"),
])
def test_bad_official_configs_are_one_line(tmp_path, capsys, edit, message):
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    edit(config)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    code, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", tmp_path / "bad.yaml")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_config_that_is_not_a_text_file_or_is_a_directory_is_one_line(tmp_path, capsys):
    for config, message in ((FIXTURE / "model.pth", "model.pth: not a YAML config file"),  # a UnicodeDecodeError traceback
                            (tmp_path, "a directory; pass the official code's configs/NAME.yaml file in it")):
        code, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", config)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out.exists(), err


def test_a_published_name_is_read_as_such_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    """The official training_artifacts/download_all.py saves each model into a folder of its name:
    run from there, --config ffhq was refused as a directory."""
    (tmp_path / "ffhq").mkdir()
    monkeypatch.chdir(tmp_path)
    assert convert.read_config("ffhq").model.image_shape == [1024, 1024, 3]


def test_short_schedule_lists_repeat_their_last_entry_as_the_official_code_reads_them(tmp_path):
    """lod_driver.py reads LOD_2_BATCH_*GPU at min(level, len - 1): the official experiment configs
    with fewer entries than levels were refused."""
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    config["TRAIN"] = {"LOD_2_BATCH_8GPU": [64, 32], "LEARNING_RATES": [0.0015, 0.002]}
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(config))
    levels = config["MODEL"]["LAYER_COUNT"]
    train = convert.read_config(str(tmp_path / "short.yaml")).train
    assert train.level_batch_sizes == [64] + [32] * (levels - 1)
    assert train.level_learning_rates == [0.0015] + [0.002] * (levels - 1)


def test_the_official_image_flips_carry_over(tmp_path):
    """DATASET.FLIP_IMAGES (defaults.py: True; the MNIST configs: False) -> data.random_flip."""
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    config.pop("DATASET", None)
    (tmp_path / "default.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "off.yaml").write_text(yaml.safe_dump({**config, "DATASET": {"FLIP_IMAGES": False}}))
    assert convert.read_config(str(tmp_path / "default.yaml")).data.random_flip is True
    assert convert.read_config(str(tmp_path / "off.yaml")).data.random_flip is False
    assert all(published_config(name).data.random_flip for name in PUBLISHED)


@pytest.mark.parametrize("name", ["model.pth", "model_legacy.pth"])
def test_truncated_checkpoints_are_refused_and_nothing_is_written(tmp_path, capsys, name):
    data = (FIXTURE / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) * 2 // 3])
    code, err, out = run_convert(tmp_path, capsys, tmp_path / name, FIXTURE / "config.yaml")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_missing_checkpoint_or_a_folder_is_named_as_such(tmp_path, capsys):
    """It said "not a readable torch.save file (FileNotFoundError: ...)"."""
    for checkpoint, message in ((tmp_path / "nope.pth", "no such file"), (tmp_path, "a directory, not a .pth file")):
        code, err, out = run_convert(tmp_path, capsys, checkpoint, FIXTURE / "config.yaml")
        assert (code, err) == (2, f"error: {checkpoint}: {message}\n") and not out.exists()


def test_a_truncated_legacy_file_says_it_ends_early(tmp_path, capsys):
    """It said "truncated or inconsistent (256 elements stored, 256 expected)"."""
    data = (FIXTURE / "model_legacy.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) * 2 // 3])
    code, err, out = run_convert(tmp_path, capsys, tmp_path / "cut.pth", FIXTURE / "config.yaml")
    assert code == 2 and "the file ends early (truncated): storage" in err and "expected)" not in err, err


def test_a_legacy_file_whose_storage_list_lacks_a_tensors_data_is_one_line(tmp_path, capsys):
    """Its trailing list of stored data without one storage that a tensor uses (torch.save lists
    every one): a KeyError traceback when a converted tensor used it (read after load returned), and
    the damaged file converted without a word when none did, as here."""
    import io
    import pickle
    import pickletools

    data = (FIXTURE / "model_legacy.pth").read_bytes()
    file = io.BytesIO(data)
    for _ in range(4):  # read past the magic number, the protocol, the system info, the object
        list(pickletools.genops(file))
    start = file.tell()
    keys = pickle.load(file)
    damaged = data[:start] + pickle.dumps(keys[:-1], protocol=2) + data[file.tell():]
    (tmp_path / "damaged.pth").write_bytes(damaged)
    code, err, out = run_convert(tmp_path, capsys, tmp_path / "damaged.pth", FIXTURE / "config.yaml")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists(), err
    assert f"storage(s) {keys[-1]} of its tensors are missing from its list of stored data (damaged)" in err, err


def test_a_damaged_tensor_in_a_zip_checkpoint_is_one_line(tmp_path, capsys):
    """A corrupted download: the zip's directory is fine but a tensor's bytes fail their CRC, found
    only when the tensor is read (after load returned): it was a BadZipFile traceback, exit 1."""
    import zipfile

    with zipfile.ZipFile(FIXTURE / "model.pth") as original:
        largest = max((info for info in original.infolist() if "/data/" in info.filename), key=lambda info: info.file_size)
    data = bytearray((FIXTURE / "model.pth").read_bytes())
    data[largest.header_offset + 30 + len(largest.filename.encode()) + largest.file_size // 2] ^= 0xFF  # (stored members)
    (tmp_path / "bad.pth").write_bytes(bytes(data))
    code, err, out = run_convert(tmp_path, capsys, tmp_path / "bad.pth", FIXTURE / "config.yaml")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists(), err
    assert "not a readable torch.save file (storage" in err and "BadZipFile" in err, err


def test_a_checkpoint_holding_other_than_state_dicts_is_one_line():
    """Whole modules saved instead of their state_dict() (or a bare tensor): AttributeError tracebacks."""
    checkpoint = torch_files.load(FIXTURE / "model.pth")
    checkpoint["models"]["dlatent_avg"] = checkpoint["models"]["dlatent_avg"]["buff"]
    with pytest.raises(ALAEError, match=r"models\['dlatent_avg'\] is a TensorRef, not a state dict"):
        convert.official_states(checkpoint, "x.pth")


def test_a_checkpoint_with_one_copy_of_the_nets_converts_with_a_note(tmp_path, monkeypatch):
    """Only the smoothed nets (what the official figure scripts load), or only the live ones:
    both of our copies got them without a word."""
    full = torch_files.load(FIXTURE / "model.pth")
    for removed, held in (("_s", "live"), ("", "smoothed")):
        checkpoint = {**full, "models": {name: state for name, state in full["models"].items()
                                         if name == "dlatent_avg" or name.endswith("_s") != (removed == "_s")}}
        monkeypatch.setattr(torch_files, "load", lambda path, checkpoint=checkpoint: checkpoint)
        lines = []
        convert.convert(FIXTURE / "model.pth", convert.read_config(str(FIXTURE / "config.yaml")), tmp_path / held,
                        log=lines.append, epoch_images=70000)
        [note] = [line for line in lines if line.startswith("note: ")]
        assert note.startswith(f"note: the checkpoint holds only the {held} discriminator, generator, mapping_tl, "
                               "mapping_fl; our "), note
        prefix = tf.train.latest_checkpoint(str(tmp_path / held / "checkpoints"))
        for net in ("mapping", "generator", "encoder", "discriminator"):
            live, smoothed = net_variables(prefix, net), net_variables(prefix, f"{net}_ema")
            assert live and live.keys() == smoothed.keys(), net
            for path, value in live.items():
                np.testing.assert_array_equal(value, smoothed[path], err_msg=f"{net}{path}")


def net_variables(prefix, net):
    """{path below the model's NET in the checkpoint's object graph: value} of every variable a
    load_run would restore into it (the stored keys of the live nets go through the optimizers)."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def child(node, name):
        [found] = [c.node_id for c in graph.nodes[node].children if c.local_name == name]
        return found

    values = {}

    def walk(node, path, seen):
        for attribute in graph.nodes[node].attributes:
            if attribute.name == "VARIABLE_VALUE":
                values[path] = reader.get_tensor(attribute.checkpoint_key)
        for c in graph.nodes[node].children:
            if c.node_id not in seen:
                walk(c.node_id, f"{path}/{c.local_name}", seen | {c.node_id})

    start = child(child(0, "model"), net)
    walk(start, "", {start})
    return values


def test_a_damaged_tensor_whose_bytes_still_read_as_numbers_is_refused(tmp_path, monkeypatch):
    """A legacy-format file has no checksums: 400 flipped bytes in a tensor converted without a word
    (weights of 1e25), E(x) of the run was NaN, and edit directions died with a traceback."""
    class Scaled:  # a tensor of the checkpoint, read with its values times `factor`
        def __init__(self, tensor, factor):
            self.tensor, self.factor, self.shape = tensor, factor, tensor.shape

        def array(self):
            return self.tensor.array() * np.float32(self.factor)

    full = torch_files.load(FIXTURE / "model_legacy.pth")
    for net, name, factor, message in (
            ("discriminator", "encode_block.0.conv_1.weight", 1e25, "the live nets compute values that are not "
             "finite in E (their codes), D (its scores of them): the file is damaged"),
            ("mapping_fl_s", "map_blocks.0.fc.weight", np.nan, "1 tensor(s) hold values that are not numbers "
             "(mapping_fl_s.map_blocks.0.fc.weight): the file is damaged; download it again")):
        state = dict(full["models"][net])
        state[name] = Scaled(state[name], factor)
        checkpoint = {**full, "models": {**full["models"], net: state}}
        monkeypatch.setattr(torch_files, "load", lambda path, checkpoint=checkpoint: checkpoint)
        with pytest.raises(ALAEError, match=re.escape(message)):
            convert.convert(FIXTURE / "model_legacy.pth", convert.read_config(str(FIXTURE / "config.yaml")),
                            tmp_path / net, log=lambda line: None, epoch_images=70000)
        assert not (tmp_path / net).exists()


def test_a_converted_run_fine_tunes_past_the_top_levels_fade_in(loaded):
    """The step was the top level's first, where its fade-in starts: a fine-tune blended the
    published model's top level out and trained on upsampled lower-resolution images."""
    from alae_tf import schedule

    config, model = loaded
    top = schedule.phases(config)[-1]
    assert model.step == top.first_step + -(-top.fade_images // top.batch_size) > top.first_step
    assert float(schedule.blend_at(top, model.step)) == 1.0


@pytest.mark.parametrize("trained", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["checked", "one step"])
def test_a_converted_run_fine_tunes_on_fewer_images_than_its_first_levels_batch(trained, converted_pth, tmp_path, capsys,
                                                                                monkeypatch):
    """The batch sizes of every level were checked against the data, also those of the levels a
    converted run never trains: the official 512 at 4x4 refused any set of fewer images. The check
    comes before the first step, whose trace takes over a minute on 2 CPU cores: the default suite
    stops the run there (as a Ctrl-C would); the slow case trains that step."""
    from PIL import Image

    from alae_tf import train
    from alae_tf.data import prepare
    from alae_tf.model import ALAE

    run = copy_of(converted_pth, tmp_path)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(40):  # 36 training images: the top level's batch is 32, the first level's 512
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    assert prepare.main([str(folder), str(tmp_path / "prepared"), "--resolution", "128"]) == 0  # the run's data kind
    step = saved_step(run)
    if not trained:
        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(ALAE, "fit", interrupt)
    code = train.main(["--out", str(run), "--data-path", str(tmp_path / "prepared"), "--steps", str(step + 1),
                       "--verbose", "0"])
    captured = capsys.readouterr()
    assert "error" not in captured.err
    assert f"level 5 (128x128): steps {step} -> {step + 1}, batch 32" in captured.out
    assert (code, saved_step(run)) == ((0, step + 1) if trained else (130, step))


def test_a_converted_run_fine_tunes_with_the_batch_size_chosen_at_conversion(converted_pth, tmp_path, capsys):
    """A fine-tune could not change the official batch sizes (the step counter counts batches), and
    train's refusal said to use a new --out, which starts from random weights."""
    from PIL import Image

    from alae_tf import schedule, train
    from alae_tf.data import prepare

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(10):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    assert prepare.main([str(folder), str(tmp_path / "prepared"), "--resolution", "128"]) == 0
    official, run = copy_of(converted_pth, tmp_path), tmp_path / "batch_4"
    assert convert.main(["--checkpoint", str(FIXTURE / "model.pth"), "--config", str(FIXTURE / "config.yaml"),
                         "--out", str(run), "--batch-size", "4"]) == 0
    assert train.main(["--out", str(official), "--data-path", str(tmp_path / "prepared"), "--steps", "99999999",
                       "--batch-size", "4"]) == 2
    assert "convert it again with --batch-size" in capsys.readouterr().err
    config = read_run_config(RunDir(run))  # a fine-tune trains as the test above shows, here at batch 4
    top = schedule.phases(config)[-1]
    assert config.train.batch_size == top.batch_size == 4 and saved_step(run) == top.faded_in_step


def test_export_checks_a_converted_run_on_the_data_given_with_data_path(converted_pth, tmp_path):
    """Export said "pass --data-path DIR" for a converted run (it names no data), an option it lacked."""
    from PIL import Image

    from alae_tf.data import open_run_images, prepare
    from export import build
    from export.__main__ import parse_args
    from serving import contract

    config = read_run_config(RunDir(converted_pth))
    notes = []
    build.real_images(config, notes.append)
    assert notes == ["checking with random images: the run's data is not available (dataset 'prepared' needs a "
                     "directory; pass --data-path DIR)"]
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(10):
        Image.fromarray(np.random.default_rng(index).integers(0, 256, (128, 128, 3), np.uint8)).save(folder / f"{index}.png")
    assert prepare.main([str(folder), str(tmp_path / "prepared"), "--resolution", "128"]) == 0
    images = build.real_images(config, notes.append, str(tmp_path / "prepared"))
    held_out = open_run_images(config, path=str(tmp_path / "prepared")).test_images(128, len(images))
    assert len(notes) == 1 and len(images) >= 1
    np.testing.assert_array_equal(images, contract.to_model_range(held_out))
    assert parse_args(["--run", str(converted_pth), "--data-path", "d"]).data_path == "d"


def test_a_stop_signal_during_the_conversion_leaves_nothing(tmp_path, capsys, monkeypatch):
    """SIGTERM killed it and left OUT's staging folder; Ctrl-C printed a traceback."""
    import os
    import signal

    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        def save_then_stop(manager, checkpoint_number=None, **kwargs):
            os.kill(os.getpid(), signum)

        monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_stop)
        handler = signal.getsignal(signal.SIGTERM)
        got, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", FIXTURE / "config.yaml")
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"  # named since 2026-12-07, as the other commands do
        assert got == code and err == f"\ninterrupted ({name}); nothing was written to {out}\n", err
        assert sorted(p.name for p in tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGTERM) == handler


def test_a_run_published_meanwhile_into_the_same_out_is_left_as_it_is(tmp_path, capsys, monkeypatch):
    """Two conversions into one --out shared one staging folder: the result held one's config and
    the other's checkpoint, and the second ended in a TensorFlow traceback. A staging folder of a
    killed conversion (its lock free) is removed by the next."""
    killed = tmp_path / ".run.converting-1-abcd"
    atomic_file.make_staging_folder(killed).close()
    (killed / "checkpoints").mkdir()
    real_save = tf.train.CheckpointManager.save

    def another_conversion_publishes_first(manager, *args, **kwargs):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.yaml").write_text("theirs")
        return real_save(manager, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", another_conversion_publishes_first)
    code, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", FIXTURE / "config.yaml")
    assert (code, err) == (2, f"error: {out}: appeared while this conversion ran (another one into the same --out?); "
                              "it is left as it is and nothing was written: pass a new --out directory\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and (out / "config.yaml").read_text() == "theirs"


def test_an_existing_out_directory_is_not_touched(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    code, err, _ = run_convert(tmp_path, capsys, FIXTURE / "model.pth", FIXTURE / "config.yaml")
    assert code == 2 and "already exists" in err and (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_a_full_disk_or_an_unwritable_out_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    """The checkpoint's save fails as TensorFlow's does on a full disk; then --out under a file.
    Both were tracebacks."""
    def save_on_a_full_disk(manager, checkpoint_number=None, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, f"{manager.directory}/ckpt_temp/part; No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_on_a_full_disk)
    code, err, out = run_convert(tmp_path, capsys, FIXTURE / "model.pth", FIXTURE / "config.yaml")
    assert code == 2 and re.fullmatch(f"error: no space left on the disk, writing {re.escape(str(tmp_path))}/\\.run\\.converting-{os.getpid()}-"
                                      f"[0-9a-f]{{8}}/checkpoints/ckpt_temp/part; nothing was written to {re.escape(str(out))}: free some "
                                      "space and run the command again\n", err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "run"
    assert convert.main(["--checkpoint", str(FIXTURE / "model.pth"), "--config", str(FIXTURE / "config.yaml"),
                         "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: cannot write {out} (Not a directory)\n"


def test_tensors_reaching_past_their_storage_are_refused():
    storage = torch_files.Storage("0", "FloatStorage", 4)
    with pytest.raises(torch_files.TorchFileError, match="reaches element 4 of a storage of 4"):
        torch_files.TensorRef(storage, 0, (3,), (2,), reader=None)
    with pytest.raises(torch_files.TorchFileError, match="invalid shape"):
        torch_files.TensorRef(storage, 0, (2,), (-1,), reader=None)
    ok = torch_files.TensorRef(storage, 1, (2, 1), (2, 1), reader=lambda s: np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(ok.array(), [[1.0], [3.0]])


def test_unknown_classes_in_a_checkpoint_stay_inert(tmp_path):
    checkpoint = torch_files.load(FIXTURE / "model.pth")
    tracks = checkpoint["auxiliary"]["tracker"]["tracks"]
    assert isinstance(tracks["loss_d"], torch_files.Opaque)  # the fixture's __main__.RunningMean, not run


def test_the_published_models_settings_ship_as_presets():
    shapes = {name: published_config(name).model.image_shape[0] for name in PUBLISHED}
    assert shapes == {"ffhq": 1024, "celeba-hq256": 256, "bedroom": 256, "celeba": 128}
    ffhq = published_config("ffhq")
    assert (ffhq.model.latent_dim, ffhq.model.start_channels, ffhq.model.max_channels, ffhq.model.mapping_layers,
            ffhq.levels, ffhq.model.backbone) == (512, 16, 512, 8, 9, "style_official")


def convert_with(tmp_path, monkeypatch, checkpoint, name):
    """Convert the fixture's config with `checkpoint` as the file's contents; (run, logged lines)."""
    monkeypatch.setattr(torch_files, "load", lambda path: checkpoint)
    lines = []
    convert.convert(FIXTURE / "model.pth", convert.read_config(str(FIXTURE / "config.yaml")), tmp_path / name,
                    log=lines.append, epoch_images=convert.read_epoch_images(str(FIXTURE / "config.yaml")))
    return tmp_path / name, lines


def test_a_checkpoint_saved_while_the_model_grew_is_set_to_the_same_point_of_our_schedule(tmp_path, monkeypatch):
    """A model_tmp_lodN file of the official training (its schedulers count the epochs done) was
    converted as a model trained to full resolution: its untrained top levels were served."""
    from alae_tf.run_dir import untrained_top_level

    full = torch_files.load(FIXTURE / "model.pth")

    def saved_after(epochs):
        return {**full, "auxiliary": {"scheduler": {"encoder_optimizer": {"last_epoch": epochs},
                                                    "decoder_optimizer": {"last_epoch": epochs}}}}

    # The fixture's config: 6 levels, the official defaults EPOCHS_PER_LOD 15, DATASET.SIZE 70000 and
    # batches 512, 256, 128, ... After 40 epochs the official code trains level 40 // 15 = 2, past its
    # fade-in (the first 15 // 2 epochs of a level). Our steps: 15 x 70000 images per level.
    level_0, level_1 = math.ceil(15 * 70000 / 512), math.ceil(15 * 70000 / 256)
    drawn = level_0 * 512 + level_1 * 256
    expected = level_0 + level_1 + math.ceil((40 * 70000 - drawn) / 128)
    run, lines = convert_with(tmp_path, monkeypatch, saved_after(40), "early")
    config, step = read_run_config(RunDir(run)), saved_step(run)
    assert step == expected == 11620
    [warning] = [line for line in lines if line.startswith("warning: ")]
    assert "saved after 40 epoch(s)" in warning and "at level 2 (16x16) of 6" in warning and f"step {expected}" in warning
    assert untrained_top_level(config, step)  # export, evaluate and edit warn so
    # The other cases from the function that gave the conversion above its step and warning (a
    # conversion each took ~5 s). 16 epochs: level 1 fading in (its first 7 epochs).
    official = convert.read_config(str(FIXTURE / "config.yaml"))
    assert "at level 1 (8x8, fading in) of 6" in convert.converted_step(official, 16, 70000)[1]
    # Past the top level's fade-in (5 x 15 + 7.5 epochs: ours fades over half a level's images, the
    # official code over 15 // 2 epochs): the step as without a count in the file.
    assert convert.converted_step(official, 83, 70000) == convert.converted_step(official, None, 70000) == \
        (phases(config)[-1].faded_in_step, None)


def test_a_checkpoint_saved_from_data_parallel_converts_without_the_prefix(tmp_path, monkeypatch, reference):
    """Every key "module."-prefixed (a net saved inside torch's DataParallel) was refused with 290
    lines of missing and unknown tensors."""
    full = torch_files.load(FIXTURE / "model.pth")
    wrapped = {**full, "models": {name: state if name == "dlatent_avg" else {f"module.{key}": value for key, value in state.items()}
                                  for name, state in full["models"].items()}}
    run, lines = convert_with(tmp_path, monkeypatch, wrapped, "wrapped")
    assert any(line.startswith("note: the nets were saved inside torch's DataParallel") for line in lines)
    _, model = load_run(run)
    sampler = Sampler.from_model(model)
    assert relative_error(sampler.encode(reference["images"]), reference["e_of_x"]) < TOLERANCE
    assert relative_error(sampler.decode(reference["w"]), reference["g_of_w"]) < TOLERANCE


def test_a_checkpoint_without_the_running_mean_of_w_names_it(tmp_path, monkeypatch):
    full = torch_files.load(FIXTURE / "model.pth")
    without = {**full, "models": {name: state for name, state in full["models"].items() if name != "dlatent_avg"}}
    with pytest.raises(ALAEError, match=r"no 'dlatent_avg' \(F's running mean of w, the centre of truncation\)"):
        convert_with(tmp_path, monkeypatch, without, "no_mean")
