"""One protocol for every backbone: the nets answer the same calls, the Sampler is the one
inference surface, and no module past the nets asks which backbone it holds."""

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from alae_tf.config import load_preset
from alae_tf.inference import Sampler
from alae_tf.model import build_alae
from alae_tf.nets import protocol

ROOT = Path(__file__).resolve().parent.parent
# Past the nets and config, nothing branches on the backbone (a growing one or not): what differs
# is data in config or an answer of the nets.
BACKBONE_FREE = ["alae_tf/model.py", "alae_tf/inference.py", "alae_tf/train.py", "alae_tf/training.py", "alae_tf/callbacks.py",
                 "alae_tf/grids.py", "alae_tf/evaluate.py", "alae_tf/evaluation.py", "alae_tf/schedule.py", "alae_tf/metrics", "alae_tf/data",
                 "alae_tf/editing", "alae_tf/edit.py", "alae_tf/project.py", "export", "serving"]
BRANCH = re.compile(r"\.progressive\b|\bprogressive\s*=|backbone\s*[!=]=|\bif\b[^\n]*\bbackbone\b|\bbackbone\b[^\n]*\bif\b")


@pytest.fixture(scope="module", params=["mnist", "tiny_style"])
def model(request):
    config = load_preset(request.param)
    if request.param == "mnist":
        config.model.hidden_dim = 32
    return config, build_alae(config)


def test_every_backbone_answers_the_protocol(model):
    config, model = model
    nets = model.networks()
    assert isinstance(nets.mapping, protocol.Mapping) and isinstance(nets.generator, protocol.Generator)
    assert isinstance(nets.encoder, protocol.Encoder) and isinstance(nets.discriminator, protocol.Discriminator)
    g = nets.generator
    assert g.num_styles == g.styles_per_level * g.levels and nets.encoder.levels == g.levels == config.levels
    assert tuple(g.image_shape(g.levels - 1)) == tuple(config.model.image_shape)
    w = nets.mapping(tf.random.stateless_normal([3, config.model.latent_dim], seed=[0, 1]))
    for level in range(g.levels):
        noise = [tf.zeros([3, *shape]) for shape in g.noise_shapes(level)]
        for styles in (w, tf.repeat(w[:, None], g.num_styles, axis=1)):  # one w, or one per style input
            images = g(styles, level=level, blend=0.5 if level else None, noise=noise)
            assert tuple(images.shape[1:]) == tuple(g.image_shape(level))
            assert nets.encoder(images, level=level, blend=0.5 if level else None).shape == (3, config.model.latent_dim)
    assert nets.discriminator(w).shape == (3,)


def test_the_encoders_features_map_linearly_onto_w(model):
    """MLP: the last hidden layer, which the output layer turns into w; StyleALAE: the blocks'
    terms of w, which sum to it (also mid-fade)."""
    config, model = model
    encoder, latent = model.encoder, config.model.latent_dim
    for level in range(encoder.levels):
        blend = 0.5 if level else None
        images = tf.random.stateless_uniform([3, *model.generator.image_shape(level)], seed=[2, level], minval=-1)
        features, w = encoder.features(images, level=level, blend=blend), encoder(images, level=level, blend=blend)
        if config.model.backbone == "mlp":
            assert features.shape == (3, config.model.hidden_dim)
            out = features
            for layer in encoder.body.layers[-2:]:
                out = layer(out)
            np.testing.assert_allclose(out, w, rtol=1e-5, atol=1e-6)
        else:
            assert features.shape == (3, (level + 1) * latent)
            np.testing.assert_allclose(tf.reduce_sum(tf.reshape(features, [3, level + 1, latent]), axis=1), w,
                                       rtol=1e-5, atol=1e-5)


def test_the_sampler_uses_the_ema_copies_the_config_names(model):
    config, model = model
    nets = Sampler.from_model(model)
    expected = {name: getattr(model, f"{name}_ema" if name in config.train.ema_nets else name)
                for name in ("mapping", "generator", "encoder")}
    assert (nets.mapping, nets.generator, nets.encoder) == tuple(expected.values())
    live = Sampler.from_model(model, use_ema=False)
    assert (live.mapping, live.generator, live.encoder) == (model.mapping, model.generator, model.encoder)


def test_generate_truncates_toward_fs_running_average(model):
    config, model = model
    sampler = Sampler.from_model(model)
    sampler.mapping.w_avg.assign(tf.random.stateless_normal([config.model.latent_dim], seed=[3, 4]))
    z = tf.random.stateless_normal([4, config.model.latent_dim], seed=[5, 6])
    w = sampler.map(z)
    psi = 0.5
    # By hand: w_avg + psi (w - w_avg) on every style input before the cutoff (all of them here).
    by_hand = sampler.decode(sampler.mapping.w_avg + psi * (w - sampler.mapping.w_avg))
    np.testing.assert_allclose(sampler.generate(z, psi), by_hand, atol=1e-5)
    np.testing.assert_allclose(sampler.generate(z, 0.0), sampler.decode(tf.repeat(sampler.mapping.w_avg[None], 4, 0)), atol=1e-5)
    assert np.abs(sampler.generate(z, 1.0) - sampler.generate(z, psi)).max() > 1e-3
    sampler.mapping.w_avg.assign(tf.zeros([config.model.latent_dim]))


def test_no_backbone_branch_past_the_nets():
    offenders = []
    for entry in BACKBONE_FREE:
        path = ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if BRANCH.search(line.split("#")[0]):
                    offenders.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "backbone branches:\n" + "\n".join(offenders)


def test_no_backbone_is_told_by_its_name_past_its_table():
    """What a backbone is (grows, XLA by default, the baselines', converted) is data in
    config.BACKBONES; its networks are alae_tf.nets'. Comparisons with a backbone's name elsewhere
    (config.py, run_dir.py had three) would need editing for every new backbone."""
    by_name = re.compile(r"""backbone\s*[!=]=\s*["']|["'](mlp|style|style_official)["']\s*[!=]=""")
    offenders = [f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
                 for folder in ("alae_tf", "export", "serving", "benchmarks") for file in sorted((ROOT / folder).rglob("*.py"))
                 for number, line in enumerate(file.read_text().splitlines(), 1) if by_name.search(line.split("#")[0])]
    assert not offenders, "backbone names compared:\n" + "\n".join(offenders)
    from alae_tf.config import BACKBONES
    from alae_tf.nets import BACKBONE_BUILDERS

    assert BACKBONE_BUILDERS.keys() == BACKBONES.keys()


def test_only_the_live_nets_are_trainable(model):
    """The EMA copies change by the EMA lerp only: none of their weights is trainable, also those
    of sublayers the nets create lazily when they first run (AdaIN's style layers)."""
    _, model = model
    live = {id(v) for net in model.networks().by_name().values() for v in net.trainable_weights}
    assert live and {id(v) for v in model.trainable_variables} == live
    for name in model.ema_names:
        assert getattr(model, f"{name}_ema").trainable_weights == []
