"""StyleALAE: networks at every level, fade-in, schedule, style mixing, truncation, statistics."""

import copy
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf import schedule
from alae_tf.config import load_preset
from alae_tf.data.batches import style_mixing_draws
from alae_tf.inference import Sampler
from alae_tf.layers import (
    DownscaleConv2D, UpscaleConv2D, downsample2x, instance_moments, instance_normalize, upsample2x,
)
from alae_tf.model import build_alae
from alae_tf.nets import build_networks
from alae_tf.nets.style import EncoderBlock, level_channels
from replica_state import relative_difference, training_state
from training_data import batches_for


@pytest.fixture(scope="module")
def tiny():
    """tiny_style grown to 16x16 (3 levels), so a middle level is tested too."""
    config = load_preset("tiny_style")
    config.model.image_shape = [16, 16, 3]
    config.train.level_batch_sizes = [8, 8, 8]
    config.train.level_learning_rates = [0.002] * 3
    config.validate()
    return config, build_alae(config)


def test_shapes_and_ranges_at_every_level(tiny):
    config, model = tiny
    w = model.mapping(tf.random.normal([5, config.model.latent_dim]))
    for level in range(3):
        resolution = 4 * 2**level
        noise = [tf.random.normal([5, *shape]) for shape in model.generator.noise_shapes(level)]
        images = model.generator(w, level=level, blend=0.5, noise=noise)
        assert images.shape == (5, resolution, resolution, 3)
        assert np.isfinite(images).all() and np.abs(images).max() < 20
        w_rec = model.encoder(images, level=level, blend=0.5)
        assert w_rec.shape == (5, config.model.latent_dim) and np.isfinite(w_rec).all()
    assert [level_channels(config.model.start_channels, config.model.max_channels, 3, level) for level in range(3)] == [16, 16, 8]


# 64 is slow only: build_all's passes at its levels 4, 2 and 0 are of the kinds 16's (a fade-in pass at the
# top, then level 0) and 32's (a fade-in pass below the top) run, with the same blocks.
@pytest.mark.parametrize("side", [8, 16, 32, pytest.param(64, marks=pytest.mark.slow)])
def test_building_the_model_creates_the_weights_of_every_level(side):
    """build_all runs every other level from the top (with the fade-in, which also reaches the RGB
    layers of the level below): calling each net at every level afterwards creates no weight."""
    config = load_preset("tiny_style")
    config.model.image_shape = [side, side, 3]
    levels = int(math.log2(side)) - 1
    config.train.level_batch_sizes = [8] * levels
    config.train.level_learning_rates = [0.002] * levels
    config.validate()
    model = build_alae(config)
    created = len(model.weights)
    w = tf.zeros([1, config.model.latent_dim])
    for nets in (model.networks(), model.sampling_networks()):
        assert nets.generator.levels == levels
        for level in range(levels):
            for blend in (None, 0.5):
                nets.discriminator(nets.encoder(nets.generator(nets.mapping(w), level=level, blend=blend), level=level,
                                                blend=blend))
    assert len(model.weights) == created


def test_generator_rgb_gain_scales_the_images_and_defaults_to_the_backbones_own(tiny):
    """model.generator_rgb_gain: None keeps each backbone's toRGB gain (1 ours, 0.03 the official's,
    so runs written before the setting load unchanged); a value replaces it on every level."""
    config = tiny[0]
    generators = {}
    for backbone, gain in [("style", None), ("style", 0.03), ("style_official", None), ("style_official", 0.5)]:
        changed = copy.deepcopy(config)
        changed.model.backbone, changed.model.generator_rgb_gain = backbone, gain
        changed.validate()
        generators[backbone, gain] = build_networks(changed.model, changed.train.truncation_cutoff).generator  # as build_alae's
    expected = {("style", None): 1.0, ("style", 0.03): 0.03, ("style_official", None): 0.03, ("style_official", 0.5): 0.5}
    for key, gain in expected.items():
        assert [layer.gain for layer in generators[key].to_rgb] == [gain] * 3, key
    ours, scaled = generators["style", None], generators["style", 0.03]
    w = tf.random.normal([4, config.model.latent_dim], seed=1)
    noise = [tf.random.normal([4, *shape], seed=2) for shape in ours.noise_shapes(2)]
    images = ours(w, noise=noise)
    scaled(w, noise=noise)
    scaled.set_weights(ours.get_weights())
    bias = ours.rgb_bias[2](tf.zeros([1, 1, 1, 3]))
    np.testing.assert_allclose(scaled(w, noise=noise) - bias, 0.03 * (images - bias), rtol=1e-4, atol=1e-6)


def _is_linear(discriminator, latent_dim):
    """D(a w1 + (1 - a) w2) == a D(w1) + (1 - a) D(w2), as only a D without activations computes."""
    w1, w2 = (tf.random.normal([64, latent_dim], seed=seed) * 3.0 for seed in (3, 4))
    mixed = discriminator(0.3 * w1 + 0.7 * w2)
    return np.allclose(mixed, 0.3 * discriminator(w1) + 0.7 * discriminator(w2), rtol=1e-4, atol=1e-4)


def test_disc_kind_picks_ds_activations_and_defaults_to_the_backbones_own(tiny):
    """model.disc_kind: None keeps each backbone's D (leaky for style, linear for style_official and
    the MLP, so runs written before the setting load unchanged); linear or leaky replaces it."""
    mnist = load_preset("mnist")
    cases = [(tiny[0], "style", None, False), (tiny[0], "style", "linear", True),
             (tiny[0], "style_official", None, True), (tiny[0], "style_official", "leaky", False),
             (mnist, "mlp", None, True), (mnist, "mlp", "leaky", False)]
    for config, backbone, kind, linear in cases:
        changed = copy.deepcopy(config)
        changed.model.backbone, changed.model.disc_kind = backbone, kind
        changed.validate()
        discriminator = build_networks(changed.model, changed.train.truncation_cutoff).discriminator  # as build_alae's
        assert _is_linear(discriminator, changed.model.latent_dim) == linear, (backbone, kind)
        leaky = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.LeakyReLU)]
        assert len(leaky) == (0 if linear else changed.model.disc_layers - 1), (backbone, kind)


def test_fade_in_starts_from_the_previous_level_and_ends_at_the_new_one(tiny):
    config, model = tiny
    styles = Sampler.from_model(model).styles(model.mapping(tf.random.normal([4, config.model.latent_dim])))
    for level in (1, 2):
        previous = model.generator(styles, level=level - 1)
        np.testing.assert_allclose(model.generator(styles, level=level, blend=0.0), upsample2x(previous), atol=1e-5)
        np.testing.assert_allclose(model.generator(styles, level=level, blend=1.0), model.generator(styles, level=level), atol=1e-5)
        images = tf.random.uniform([4, 4 * 2**level, 4 * 2**level, 3], -1, 1)
        np.testing.assert_allclose(model.encoder(images, level=level, blend=0.0),
                                   model.encoder(downsample2x(images), level=level - 1), atol=1e-4)
        np.testing.assert_allclose(model.encoder(images, level=level, blend=1.0), model.encoder(images, level=level), atol=1e-5)


def test_a_samplers_features_are_its_encodings_parts_at_its_blend(tiny):
    """w is the sum of E's per-block contributions (features): a sampler of a level fading in gives
    features of the same blend as its encode (features ignored the blend before 2026-12-05)."""
    config, model = tiny
    images = tf.random.uniform([3, 16, 16, 3], -1, 1)
    sampler = Sampler.from_model(model, level=2, blend=0.3)
    parts = sampler.features(images).numpy().reshape(3, -1, config.model.latent_dim)
    np.testing.assert_allclose(parts.sum(axis=1), sampler.encode(images), atol=1e-4)
    assert np.abs(parts.sum(axis=1) - Sampler.from_model(model, level=2).encode(images).numpy()).max() > 1e-3


def test_blend_schedule_follows_the_cosine_ramp_over_the_first_half_of_each_level():
    config = load_preset("mnist_style32")
    phases = schedule.phases(config)
    assert [p.resolution for p in phases] == [4, 8, 16, 32]
    assert [p.first_step for p in phases] == [0, 4688, 9376, 14064]  # ceil(600000 / 128) steps per level
    assert phases[-1].end_step is None and phases[1].first_image == 4688 * 128
    level1 = phases[1]
    fade_steps = 300000 / 128
    for fraction, expected in ((0.0, 0.0), (0.25, (math.sin(0.25 * math.pi - math.pi / 2) + 1) / 2), (0.5, 0.5), (1.0, 1.0), (1.5, 1.0)):
        step = level1.first_step + round(fraction * fade_steps)
        t = min(1.0, (step - level1.first_step) * 128 / 300000)
        assert float(schedule.blend_at(level1, step)) == pytest.approx((math.sin(t * math.pi - math.pi / 2) + 1) / 2)
        assert float(schedule.blend_at(level1, step)) == pytest.approx(expected, abs=2e-3)
        assert float(schedule.blend_at(level1, tf.constant(step, tf.int64))) == pytest.approx(float(schedule.blend_at(level1, step)), abs=1e-6)
    assert float(schedule.blend_at(phases[0], 10)) == 1.0
    ramp = [float(schedule.blend_at(level1, level1.first_step + s)) for s in range(0, 2400, 50)]
    assert ramp == sorted(ramp)
    assert schedule.phase_at(phases, 4687).level == 0 and schedule.phase_at(phases, 4688).level == 1
    assert schedule.phase_at(phases, 10**9).level == 3
    # 60 epochs of 60k images: 4688 * 3 steps for levels 0-2, the rest at batch 64.
    assert schedule.total_steps(config, 60000) == 14064 + math.ceil((3_600_000 - 14064 * 128) / 64)


def test_an_epochs_schedule_that_never_reaches_the_top_level_is_warned_of():
    """images_per_level counts images: a preset's schedule on a smaller data set of one's own ended
    at 4x4 after all its epochs, without a word."""
    config = load_preset("mnist_style32")  # 60 epochs, 600k images per level: sized for MNIST's 60k
    assert schedule.short_schedule_note(config, 60000) is None
    note = schedule.short_schedule_note(config, 10000)  # 600k images in all: 4688 steps at batch 128, level 0
    assert note == ("warning: train.epochs 60 over 10000 training images ends at step 4688, at level 0 (4x4): the top "
                    "level (32x32) would start after 1,800,192 images (train.images_per_level 600000, sized for the "
                    "preset's dataset). For this data set e.g. train.images_per_level: 150000 (an equal share of the "
                    "epochs per level) in a --config file, or raise --epochs")
    config.train.images_per_level = 150000
    assert schedule.short_schedule_note(config, 10000) is None
    config.train.images_per_level, config.train.steps = 600000, 100  # steps asked for: a short run on purpose
    assert schedule.short_schedule_note(config, 10000) is None


def test_style_mixing_crossover_points_stay_in_bounds():
    crossovers = []
    for step in range(200):
        draws = style_mixing_draws(step, 0, 16, 4, styles_in_use=6, num_styles=8, probability=0.9)
        crossovers.append(draws["crossover_d"].numpy())
        assert draws["z_g_mix"].shape == (16, 4)
    crossovers = np.concatenate(crossovers)
    mixed = crossovers[crossovers != 8]
    assert mixed.min() == 1 and mixed.max() == 5  # uniform over [1, active styles)
    assert abs(len(mixed) / len(crossovers) - 0.9) < 0.03
    again = style_mixing_draws(7, 0, 16, 4, styles_in_use=6, num_styles=8, probability=0.9)
    np.testing.assert_array_equal(again["crossover_g"], style_mixing_draws(7, 0, 16, 4, styles_in_use=6, num_styles=8, probability=0.9)["crossover_g"])


def test_truncation_pulls_the_first_styles_toward_the_average_w(tiny):
    config, model = tiny
    mapping = model.mapping
    mapping.w_avg.assign(tf.random.normal([config.model.latent_dim]))
    styles = Sampler.from_model(model).styles(tf.random.normal([3, config.model.latent_dim]))
    mapping.truncation_cutoff = 4
    truncated = mapping.truncate(styles, 0.7).numpy()
    w_avg = mapping.w_avg.numpy()
    np.testing.assert_allclose(truncated[:, :4] - w_avg, 0.7 * (styles[:, :4] - w_avg), atol=1e-6)
    np.testing.assert_allclose(truncated[:, 4:], styles[:, 4:], atol=1e-6)
    np.testing.assert_allclose(mapping.truncate(styles, 0.0)[:, :4], np.broadcast_to(w_avg, (3, 4, len(w_avg))), atol=1e-6)
    mapping.truncation_cutoff = config.train.truncation_cutoff


def test_the_encoders_statistics_match_numpy_including_constant_maps():
    """[mean; std] of each feature map, which E's style layers map onto w (read here through an
    identity in place of the style layer)."""
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype("float32")
    x[1, :, :, 2] = 7.0  # constant map: std = sqrt(eps), not NaN
    block = EncoderBlock(4, 4, 8, dense=False)
    statistics, _ = block._statistics_and_normalize(tf.constant(x), lambda s: s)
    np.testing.assert_allclose(statistics[:, :4], x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(statistics[:, 4:], np.sqrt(x.var(axis=(1, 2)) + 1e-8), rtol=1e-5)
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        total = tf.reduce_sum(block._statistics_and_normalize(xt, lambda s: s)[0][:, 4:])
    assert np.isfinite(tape.gradient(total, xt)).all()


def test_a_nearly_flat_map_normalises_to_its_float64_value():
    """A barely trained G's constant (1 +- 0.002) normalised: a mean rounded near 1 would cost
    ~5e-5 of the result (enough for TF and ONNX Runtime to disagree); around the first pixel
    the float32 result keeps float64's to ~1e-6."""
    x = (1.0 + 0.002 * np.random.default_rng(1).normal(size=(2, 4, 4, 64))).astype("float32")
    _, variance, centred = instance_moments(tf.constant(x))
    normalized = instance_normalize(centred, variance, 1e-8, "float32").numpy()
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x64.var(axis=(1, 2), keepdims=True) + 1e-8)
    assert np.abs(normalized - expected).max() < 5e-6


def test_the_statistics_of_a_1024x1024_map_keep_float64s_to_float32_rounding():
    """One float32 reduction over the million pixels measured 4.7e-6 relative error in the means
    and 4.8e-4 in the variances here, and the FFHQ-size encoder's w was 1e-5 of |w| from float64
    (the official code's float32: 8e-7); a mean of row means: 3.6e-7 and 5.2e-7 (2-core AVX2
    EPYC, 2026-12-07; the bound leaves room for other CPUs' summation order)."""
    rng = np.random.default_rng(2)
    x = (0.5 * rng.standard_normal((1, 1024, 1024, 4)) + np.arange(1, 5)).astype("float32")
    mean, variance, _ = instance_moments(tf.constant(x))
    x64 = x.astype(np.float64)
    mean_error = np.abs(mean.numpy() - x64.mean(axis=(1, 2))) / x64.mean(axis=(1, 2))
    variance_error = np.abs(variance.numpy() - x64.var(axis=(1, 2))) / x64.var(axis=(1, 2))
    print(f"relative error: mean {mean_error.max():.2g}, variance {variance_error.max():.2g}")
    assert mean_error.max() < 2e-6 and variance_error.max() < 2e-6
    mean64, variance64, _ = instance_moments(tf.constant(x64))  # a float64 reference run stays in float64
    assert mean64.dtype == tf.float64 and variance64.dtype == tf.float64
    np.testing.assert_allclose(variance64.numpy(), x64.var(axis=(1, 2)), rtol=1e-12)


def test_encoder_block_maps_its_instance_statistics_into_w_by_hand():
    block = EncoderBlock(channels=3, out_channels=2, latent_dim=4, dense=False)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 3)), tf.float32)
    features, w = block(x)
    # By hand: the first statistics come after conv_1 + bias + leaky ReLU ...
    h1 = tf.nn.leaky_relu(block.bias_1(block.conv_1(x)), 0.2).numpy()
    stats_1 = np.concatenate([h1.mean(axis=(1, 2)), np.sqrt(h1.var(axis=(1, 2)) + 1e-8)], axis=1)
    normalised = (h1 - h1.mean(axis=(1, 2), keepdims=True)) / np.sqrt(h1.var(axis=(1, 2), keepdims=True) + 1e-8)
    # ... the second after blur, conv_2 (a 3x3 conv, then the 2x2 mean), bias, leaky ReLU.
    conv_2 = tf.nn.conv2d(block.blur(tf.constant(normalised, tf.float32)), block.conv_2.kernel * (math.sqrt(2.0) / math.sqrt(27)), 1, "SAME")
    h2 = tf.nn.leaky_relu(block.bias_2(downsample2x(conv_2)), 0.2).numpy()
    stats_2 = np.concatenate([h2.mean(axis=(1, 2)), np.sqrt(h2.var(axis=(1, 2)) + 1e-8)], axis=1)

    def dense(layer, v):  # equalized dense: (v @ K) * gain / sqrt(fan_in) + b
        return v @ layer.kernel.numpy() * (1.0 / math.sqrt(v.shape[1])) + layer.bias.numpy()

    np.testing.assert_allclose(w, dense(block.style_1, stats_1) + dense(block.style_2, stats_2), rtol=1e-4, atol=1e-5)
    assert features.shape == (2, 2, 2, 2)


@pytest.mark.parametrize("layer_class", [UpscaleConv2D, DownscaleConv2D])
def test_resampling_convolutions_compute_the_plain_convolution_they_replace(layer_class):
    """UpscaleConv2D = 3x3 conv of the nearest 2x upsample, DownscaleConv2D = 2x2 mean of the 3x3
    conv, both with the layer's own kernel (the layout a plain convolution would store), edges
    and odd sizes included; their gradients too, and the second-order ones R1 takes through E."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(2, 6, 10, 5)), tf.float32)
    layer = layer_class(4)
    layer.build(x.shape)
    assert layer.kernel.shape == (3, 3, 5, 4)
    layer.kernel.assign(rng.normal(size=(3, 3, 5, 4)))
    scale = math.sqrt(2.0) / math.sqrt(45)
    if layer_class is UpscaleConv2D:
        plain = lambda x, k: tf.nn.conv2d(upsample2x(x), k * scale, 1, "SAME")
    else:
        plain = lambda x, k: downsample2x(tf.nn.conv2d(x, k * scale, 1, "SAME"))

    def penalty_and_gradients(apply):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = apply()
                loss = tf.reduce_sum(tf.sin(y))
            penalty = tf.reduce_sum(tf.square(inner.gradient(loss, x)))
        return [y, penalty, *outer.gradient(loss, [x, layer.kernel]), outer.gradient(penalty, layer.kernel)]

    fused = penalty_and_gradients(lambda: layer(x))
    reference = penalty_and_gradients(lambda: plain(x, layer.kernel))
    assert fused[0].shape == reference[0].shape
    for got, expected in zip(fused, reference):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def first_step_losses(strategy, source):
    """One step at level 1 mid-fade (style mixing, noise and blend all active) on `source`."""
    config = load_preset("tiny_style")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_alae(config)
    phase = schedule.phases(config)[1]
    model.enter_phase(phase)
    batches = batches_for(config, model, source=source, level=1, start_step=phase.first_step + 2)
    history = model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0).history
    return {name: values[-1] for name, values in history.items()}, training_state(model)


def test_two_replicas_see_the_same_step_as_one_replica(mirrored):
    """Step I's losses come before any update, so they must agree to float precision: each replica
    takes its half of the images, latents, crossover points and of the global batch's noise.
    (Weights are not compared: Adam's first step is +-lr * sign(g), and the biases in front of
    instance norms get gradients near zero, whose sign is float noise.) The optimizers' state holds
    the step's gradients (Adam's m, v): 7e-7 apart over all of it (those near-zero biases' gradients
    differ by up to 120%, at 1e-6 of the largest), where a loss not divided by the replica count
    would double them."""
    from alae_tf.data import open_image_source

    source = open_image_source("mnist", None, 8)
    one, one_state = first_step_losses(tf.distribute.get_strategy(), source)
    two, two_state = first_step_losses(mirrored, source)
    for name in ("loss_d", "r1"):
        assert two[name] == pytest.approx(one[name], rel=1e-5), name
    for name in ("loss_g", "loss_lae"):  # after step I's update
        assert two[name] == pytest.approx(one[name], rel=2e-2), name
    assert relative_difference(one_state["optimizer"], two_state["optimizer"]) < 1e-4
