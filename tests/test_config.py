import dataclasses
import math
import os
import subprocess
import sys

import pytest

from alae_tf import schedule
from alae_tf.config import (Config, available_presets, load_config_file, load_preset, load_training_config_file,
                             resolve_jit, save_config)
from alae_tf.errors import ConfigError


def test_mnist_preset_is_the_reference_architecture_and_schedule():
    config = load_preset("mnist")
    assert "mnist" in available_presets()
    m, t = config.model, config.train
    assert (m.latent_dim, m.mapping_layers, m.hidden_dim, m.disc_layers) == (50, 6, 1024, 3)
    assert (m.mapping_lr_mul, m.disc_lr_mul) == (0.1, 0.1)
    assert (t.batch_size, t.learning_rate, t.adam_beta1, t.adam_beta2, t.r1_gamma) == (128, 0.002, 0.0, 0.99, 10.0)
    assert t.epochs == 400 and t.steps is None
    # 400 passes over 60k images at 128 per step; every backbone reads one continuous stream of
    # seeded epochs (the MLP's old pipeline dropped each epoch's last partial batch: 400 x 468).
    assert schedule.total_steps(config, 60000) == math.ceil(400 * 60000 / 128) == 187500
    assert config.levels == 1 and config.train.ema_nets == ["mapping", "generator"]
    [phase] = schedule.phases(config)  # one open-ended phase at 28x28
    assert (phase.level, phase.resolution, phase.end_step, phase.batch_size, phase.fade_images) == (0, 28, None, 128, 0)


def test_jit_auto_means_xla_only_where_it_was_measured_faster():
    """The MLP presets say auto: XLA for the MLP in float32 on one CPU device; otherwise off; true and
    false are kept as given."""
    for preset in ("mnist", "mnist_vae", "mnist_bigan"):
        assert load_preset(preset).train.jit == "auto"
    assert load_preset("mnist_style32").train.jit is False
    config = load_preset("mnist")
    assert resolve_jit(config, distributed=False, gpu=False) is True
    assert resolve_jit(config, distributed=True, gpu=False) is False
    assert resolve_jit(config, distributed=False, gpu=True) is False
    config.train.mixed_precision = "bf16"
    assert resolve_jit(config, distributed=False, gpu=False) is False
    style = load_preset("mnist_style32")
    style.train.jit = "auto"
    assert resolve_jit(style, distributed=False, gpu=False) is False
    for given in (True, False):
        config.train.jit = given
        assert resolve_jit(config, distributed=True, gpu=True) is given


@pytest.mark.slow  # the two halves without a TensorFlow process each: the two tests below
@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_importing_alae_tf_first_turns_tensorflows_onednn_kernels_on_unless_set(setting, expected):
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import; left alone it keeps oneDNN off on some
    CPUs (this AVX2-only AMD EPYC among them). An explicit setting must win."""
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        environ["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("import alae_tf, tensorflow\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "print(port.IsMklEnabled())")
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == expected


def test_tensorflow_imported_after_alae_tf_runs_the_onednn_kernels_it_was_told_to():
    """This process imported alae_tf before TensorFlow (conftest.py): oneDNN is on unless the
    environment said otherwise."""
    from tensorflow.python.util import _pywrap_util_port as port

    assert port.IsMklEnabled() is (os.environ["TF_ENABLE_ONEDNN_OPTS"].lower() not in ("0", "false", "off"))


@pytest.mark.parametrize("setting, expected", [(None, "1"), ("0", "0"), ("false", "false")])
def test_importing_alae_tf_sets_tf_enable_onednn_opts_unless_it_is_set(setting, expected):
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        environ["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = "import os, sys, alae_tf; print(os.environ['TF_ENABLE_ONEDNN_OPTS'], 'tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [expected, "False"]


def test_config_round_trips_through_yaml(tmp_path):
    config = load_preset("mnist")
    config.train.steps = 123
    save_config(config, tmp_path / "config.yaml")
    assert load_config_file(tmp_path / "config.yaml") == config


def test_a_config_file_is_read_over_the_preset_it_names(tmp_path):
    """`preset: tiny_style` plus two changed keys was trained as the built-in defaults' MLP."""
    partial = tmp_path / "partial.yaml"
    partial.write_text("preset: tiny_style\nmodel:\n  latent_dim: 6\ntrain:\n  seed: 7\n")
    expected = load_preset("tiny_style")
    expected.model.latent_dim, expected.train.seed = 6, 7
    assert load_training_config_file(partial, "mnist") == expected
    full = tmp_path / "full.yaml"
    save_config(expected, full)  # a full copy reads as itself, also when its preset name is no preset
    assert load_training_config_file(full, "mnist") == expected
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(full.read_text().replace("preset: tiny_style", "preset: my_digits"))
    assert load_training_config_file(renamed, "mnist") == dataclasses.replace(expected, preset="my_digits")
    bare = tmp_path / "bare.yaml"
    bare.write_text("train:\n  seed: 7\n")  # no preset named: the default one's values
    mnist = load_preset("mnist")
    mnist.train.seed = 7
    assert load_training_config_file(bare, "mnist") == mnist
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny_style\nmodel: 3\n")
    with pytest.raises(ConfigError, match="model"):
        load_training_config_file(bad, "mnist")


def test_a_misspelt_preset_name_is_warned_of(tmp_path, capsys):
    """`preset: tiny_stlye` trained the built-in defaults' MNIST MLP without a word (an operator
    audit, 2026-12-06); a name far from every preset (a renamed copy) gets no warning."""
    typo = tmp_path / "typo.yaml"
    typo.write_text("preset: tiny_stlye\n")
    assert load_training_config_file(typo, "mnist").model.backbone == "mlp"
    assert capsys.readouterr().err == (f"warning: {typo}: preset tiny_stlye is no preset (did you mean tiny_style?); the "
                                       "file is read alone, every setting it leaves out at its built-in default (the "
                                       "MNIST MLP's)\n")
    for name in ("my_digits", "folder32", "faces128"):
        (tmp_path / "copy.yaml").write_text(f"preset: {name}\n")
        load_training_config_file(tmp_path / "copy.yaml", "mnist")
        assert capsys.readouterr().err == "", name


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"batch_sise": 64}}, "unknown key.*batch_sise"),
        ({"modle": {}}, "unknown key.*modle"),
        ({"train": {"batch_size": "big"}}, "train.batch_size: expected an integer"),
        ({"train": {"learning_rate": -1.0}}, "learning_rate must be positive"),
        ({"train": {"mixed_precision": "fp8"}}, "mixed_precision must be"),
        ({"model": {"mapping_layers": -1}}, "mapping_layers must be >= 0"),
        ({"train": {"steps": None, "epochs": None}}, "set train.steps or train.epochs"),
        ({"train": {"jit": "yes"}}, "expected true, false or auto"),
        ({"train": {"ema_nets": ["mapping", "decoder"]}}, "ema_nets takes names from"),
        ({"train": {"level_batch_sizes": [8, 8]}}, "level_batch_sizes needs 1 positive entries"),
        ({"model": {"backbone": "style", "image_shape": [28, 28, 1]}}, "power of two"),
        # a baseline's check looked the backbone up first: a KeyError traceback
        ({"model": {"kind": "vae", "backbone": "foo"}}, r"model.backbone must be one of mlp, .*got 'foo'"),
        ({"format": 1}, "not this version's run format"),
        ([1, 2], "expected a mapping"),
        ({"train": {"learning_rate": float("nan")}}, r"train.learning_rate must be finite, got nan"),
        ({"train": {"learning_rate": float("inf")}}, r"train.learning_rate must be finite, got inf"),
        ({"train": {"level_learning_rates": [0.001, float("nan")]}}, r"train.level_learning_rates must be finite"),
        ({"train": {"learning_rate": 1e6}}, r"train.learning_rate must be at most 1.0"),
        ({"model": {"latent_dim": 5000000}}, r"model.latent_dim must be at most 4096, got 5000000"),
        ({"model": {"image_shape": [4096, 4096, 3]}}, r"4 <= R <= 2048"),
        ({"train": {"seed": -1}}, r"train.seed must lie in \[0, 2\^31\)"),
        ({"train": {"adversarial_loss": "wgan"}}, r"train.adversarial_loss must be one of softplus, minimax, "),
        ({"train": {"w_avg_beta": 1.0}}, r"w_avg_beta must lie in \[0, 1\), got 1.0"),
        # each bad value named with what it was (one message listed four keys and no value)
        ({"train": {"adam_epsilon": 0.0}}, r"train.adam_epsilon must be > 0, got 0.0"),
        ({"model": {"disc_lr_mul": -1.0}}, r"model.disc_lr_mul must be > 0, got -1.0"),
        ({"model": {"generator_rgb_gain": 0.0}}, r"model.generator_rgb_gain must be positive, got 0.0"),
        ({"model": {"disc_kind": "relu"}}, r"model.disc_kind must be linear or leaky \(or null: the backbone's own\), got 'relu'"),
        ({"train": {"r1_gamma": -1.0}}, r"train.r1_gamma must be >= 0, got -1.0"),
        # what PyYAML makes of `adam_epsilon: 1e-8`
        ({"train": {"adam_epsilon": "1e-8"}}, r"expected a number, got '1e-8' \(YAML reads a number without a dot as text: write 1e-8 as 1.0e-8\)"),
        ({"preset": ["a"]}, "preset must be a name"),
    ],
)
def test_bad_config_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(raw, "test.yaml")


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: .*mnist"):
        load_preset("nope")


def test_broken_yaml_file_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config_file(path)


def test_presets_are_found_by_name_only(tmp_path):
    outside = tmp_path / "x.yaml"
    outside.write_text("preset: x\n")
    relative = "../" * 20 + str(outside.with_suffix("")).lstrip("/")  # a path that would reach the file
    with pytest.raises(ConfigError, match="unknown preset .*pass a config file with --config"):
        load_preset(relative)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\npreset: *a11\n")
    with pytest.raises(ConfigError, match="more than 100 aliases"):
        load_config_file(path)


def test_config_files_that_are_too_large_binary_or_special_are_refused(tmp_path):
    large, binary, fifo = tmp_path / "large.yaml", tmp_path / "binary.yaml", tmp_path / "fifo.yaml"
    large.write_text("# " + "x" * (1 << 20) + "\n")
    binary.write_bytes(bytes(range(128, 256)))
    os.mkfifo(fifo)
    for path, message in ((large, "larger than 1048576 bytes"), (binary, "not a text file"), (fifo, "not a regular file")):
        with pytest.raises(ConfigError, match=message):
            load_config_file(path)


@pytest.mark.parametrize("preset", available_presets())
def test_no_preset_sets_what_its_run_ignores(preset):
    assert load_preset(preset).ignored_settings() == []


def test_settings_the_run_never_reads_are_named_at_its_start(tmp_path, capsys):
    from alae_tf import train, training
    from alae_tf.run_dir import RunDir

    config = load_preset("mnist")
    config.train.style_mixing_prob, config.model.start_channels, config.train.energy_margin = 0.5, 8, 2.0
    config.train.gradient_penalty, config.train.r1_gamma, config.model.encoder_style_gain = "none", 5.0, 2.0
    assert config.ignored_settings() == ["model.start_channels", "model.encoder_style_gain", "train.style_mixing_prob",
                                         "train.r1_gamma", "train.energy_margin"]
    config.train.adversarial_loss = "ebgan"  # now read, as is r1_gamma under an R1 or R2 penalty
    config.train.gradient_penalty = "r2"
    assert config.ignored_settings() == ["model.start_channels", "model.encoder_style_gain", "train.style_mixing_prob"]
    config.model.disc_kind = "leaky"  # an energy loss's D is its own autoencoder
    assert config.ignored_settings()[-1] == "model.disc_kind"
    style = load_preset("mnist_style32")
    style.model.hidden_dim, style.model.generator_rgb_gain, style.model.disc_kind = 512, 0.03, "linear"
    assert style.ignored_settings() == ["model.hidden_dim"]
    config.model.generator_rgb_gain = 0.03  # the MLP has no toRGB
    assert "model.generator_rgb_gain" in config.ignored_settings()
    bigan = load_preset("mnist_bigan")  # its D is on (x, z) pairs, of hidden_dim; F is the identity; no EMA
    bigan.model.disc_hidden, bigan.model.disc_layers, bigan.model.mapping_lr_mul = 512, 5, 0.5
    bigan.train.ema_half_life_images = 500.0
    assert bigan.ignored_settings() == ["model.mapping_lr_mul", "train.ema_half_life_images", "model.disc_layers",
                                        "model.disc_hidden"]
    aae = load_preset("mnist_aae")
    aae.model.disc_hidden = 64  # the AAE's D on z reads it
    assert aae.ignored_settings() == []
    save_config(style, tmp_path / "style.yaml")
    training.resolve_config(train.parse_args(["--config", str(tmp_path / "style.yaml"), "--out", str(tmp_path / "run")]),
                            RunDir(tmp_path / "run"))
    assert capsys.readouterr().err == ("note: model.hidden_dim has no effect on this run (mnist data, style backbone, "
                                       "softplus loss, r1 penalty)\n")
    folder = load_preset("tiny_style")  # --data-source tfds on a folder was taken without a word
    folder.data.dataset, folder.data.source = "folder", "tfds"
    assert folder.ignored_settings() == ["data.source"]


def test_a_deterministic_run_resolves_jit_auto_to_no_xla_and_refuses_jit_true():
    """Keras compiles no XLA under TensorFlow's deterministic ops, with a warning on stderr, while
    the run's first line said "jit True" (an audit, 2026-12-07)."""
    from alae_tf.config import resolve_jit
    from alae_tf.errors import ConfigError

    config = load_preset("mnist")  # jit: auto, XLA on one CPU device in float32
    assert config.train.jit == "auto" and resolve_jit(config, distributed=False, gpu=False) is True
    config.train.deterministic = True
    assert resolve_jit(config, distributed=False, gpu=False) is False
    config.train.jit = True
    with pytest.raises(ConfigError, match="--deterministic do not go together .*; pass --no-jit"):
        resolve_jit(config, distributed=False, gpu=False)
    config.train.jit = False
    assert resolve_jit(config, distributed=False, gpu=False) is False
