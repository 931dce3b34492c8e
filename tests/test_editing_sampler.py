"""Editing on the inference surface, on untrained tiny models of both backbones: Sampler.edit and
mix against hand-computed styles and against the numpy twins an app uses, zero strength as the
plain reconstruction, layer ranges (the MLP's degrade to "all"), the editing figures, and the
edit-success bookkeeping on a generator whose answer is known."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.config import load_preset
from alae_tf.data.batches import to_uint8
from alae_tf.editing.figures import strength_sweep
from alae_tf.editing.ranges import layer_ranges, mixing_range_names, parse_layer_range
from alae_tf.editing.success import RANDOM_DIRECTIONS, edit_success, random_unit_direction, reconstructions_read_as
from alae_tf.errors import ALAEError
from alae_tf.grids import ImageNoise, interpolation_grid, mixing_grid_of_styles, render
from alae_tf.inference import Sampler
from alae_tf.metrics.mnist_classifier import load_classifier
from alae_tf.model import build_alae
from serving import editing


@pytest.fixture(scope="module", params=["mlp", "style"])
def sampler(request):
    config = load_preset("mnist" if request.param == "mlp" else "tiny_style")
    if request.param == "mlp":
        config.model.image_shape, config.model.hidden_dim, config.model.latent_dim = [8, 8, 1], 16, 6
    keras.utils.set_random_seed(0)
    model = build_alae(config)
    for block in getattr(model.generator_ema, "blocks", []):  # give the (zero at init) noise some weight
        for noise in (block.noise_1, block.noise_2):
            noise.weight.assign(tf.fill(noise.weight.shape, 0.5))
    return Sampler.from_model(model)


def images(count, seed=0, shape=(8, 8, 1)):
    return tf.random.stateless_uniform([count, *shape], seed=[seed, 2], minval=-1, maxval=1)


def unit(latent, seed):
    return random_unit_direction(latent, seed)


def test_edit_adds_strength_times_direction_on_the_chosen_style_inputs(sampler):
    latent, count = sampler.latent_dim, sampler.num_styles
    w = tf.random.stateless_normal([2, latent], seed=[1, 1])
    direction, strength = unit(latent, 3), np.array([0.5, -2.0], np.float32)
    start, stop = (1, 3) if count > 1 else (0, 1)
    edited = sampler.edit(w, direction, strength, start, stop).numpy()
    by_hand = np.repeat(w.numpy()[:, None], count, axis=1)
    by_hand[:, start:stop] += strength[:, None, None] * direction
    np.testing.assert_allclose(edited, by_hand, atol=1e-6)
    np.testing.assert_array_equal(edited[:, :start], by_hand[:, :start])  # outside the range: untouched, bit for bit
    whole = sampler.edit(w, direction, 1.0).numpy()  # default range: every style input
    np.testing.assert_allclose(whole, np.repeat((w.numpy() + direction)[:, None], count, axis=1), atol=1e-6)
    with pytest.raises(ValueError, match="not within"):
        sampler.edit(w, direction, 1.0, 0, count + 1)


def test_zero_strength_decodes_the_plain_reconstruction_exactly(sampler):
    x = images(3, shape=sampler.image_shape)
    w = sampler.encode(x)
    styles = sampler.edit(w, unit(sampler.latent_dim, 4), 0.0)
    np.testing.assert_array_equal(styles.numpy(), sampler.styles(w).numpy())
    np.testing.assert_array_equal(sampler.decode(styles).numpy(), sampler.reconstruct(x).numpy())
    noise = sampler.noise(3, seed=1)
    np.testing.assert_array_equal(sampler.decode(styles, noise).numpy(), sampler.decode(w, noise).numpy())
    assert np.abs(sampler.decode(sampler.edit(w, unit(sampler.latent_dim, 4), 3.0)).numpy() - sampler.decode(w).numpy()).max() > 1e-3


def test_mix_takes_the_range_from_the_source_as_the_numpy_twin_does(sampler):
    latent, count = sampler.latent_dim, sampler.num_styles
    destination = sampler.styles(tf.random.stateless_normal([2, latent], seed=[5, 1]))
    source = sampler.styles(tf.random.stateless_normal([2, latent], seed=[6, 1]))
    for start, stop in {(0, count), (0, count // 2), (count // 2, count)}:
        mixed = sampler.mix(destination, source, start, stop).numpy()
        np.testing.assert_array_equal(mixed[:, start:stop], source.numpy()[:, start:stop])
        np.testing.assert_array_equal(mixed[:, stop:], destination.numpy()[:, stop:])
        np.testing.assert_array_equal(editing.mix_styles(destination, source, start, stop, count), mixed)


def test_layer_ranges_split_the_style_inputs_and_degrade_to_all_on_one_style_input(sampler):
    ranges = layer_ranges(sampler)
    if sampler.num_styles == 1:  # the MLP
        assert ranges == {"all": (0, 1), "coarse": (0, 1), "middle": (0, 1), "fine": (0, 1)}
        assert mixing_range_names(ranges) == ["all"]
    else:  # tiny_style: 2 levels, 4 style inputs
        assert ranges == {"all": (0, 4), "coarse": (0, 2), "fine": (2, 4)}
        assert mixing_range_names(ranges) == ["coarse", "fine"]
        assert parse_layer_range("1:3", ranges) == (1, 3)
        with pytest.raises(ALAEError, match="unknown layer range 'middle'; this generator has all, coarse, fine"):
            parse_layer_range("middle", ranges)
    with pytest.raises(ALAEError, match="START:STOP"):
        parse_layer_range(f"0:{sampler.num_styles + 1}", ranges)


def test_integer_pixels_are_refused_and_float64_images_read_as_float32(sampler):
    """uint8 pixels were read as values: codes hundreds of units off, and no error (an audit)."""
    floats = images(2).numpy()
    pixels = np.round((floats + 1.0) * 127.5).astype(np.uint8)
    for method in (sampler.encode, sampler.features, sampler.reconstruct):
        with pytest.raises(ValueError, match=r"images must be float in \[-1, 1\], got uint8: convert \[0, 255\] pixels"):
            method(pixels)
    np.testing.assert_array_equal(sampler.encode(floats.astype(np.float64)), sampler.encode(floats))


def test_as_styles_checks_the_shape(sampler):
    with pytest.raises(ValueError, match=f"styles \\[B, {sampler.num_styles}, latent\\]"):
        sampler.as_styles(tf.zeros([2, sampler.num_styles + 1, sampler.latent_dim]))


def test_strength_sweep_rows_are_the_image_then_its_edits(sampler):
    x = images(2, seed=3, shape=sampler.image_shape)
    direction, strengths = unit(sampler.latent_dim, 5), [0.0, 1.0, -2.0]
    grid = strength_sweep(sampler, to_uint8(x).numpy(), sampler.encode(x), direction, strengths, noise=4)
    size = sampler.image_shape[0]
    assert grid.shape == (2 * size, 4 * size, sampler.image_shape[2]) and grid.dtype == np.uint8
    cells = grid.reshape(2, size, 4, size, -1).transpose(0, 2, 1, 3, 4)
    np.testing.assert_array_equal(cells[:, 0], to_uint8(x).numpy())
    w = sampler.encode(x)
    for column, strength in enumerate(strengths, 1):
        expected = render(sampler, sampler.edit(w, direction, strength), noise=4)
        np.testing.assert_allclose(cells[:, column].astype(int), expected.astype(int), atol=1)  # batch-size rounding


@pytest.mark.parametrize("sampler", ["style"], indirect=True)  # the MLP has no noise inputs
def test_strength_sweep_keeps_each_images_own_noise(sampler):
    """ImageNoise: image 0 with its noise images in every edit, image 1 (none given) without noise;
    the expected cells are G with that noise (or none) through the Sampler. An interpolation
    between an image with noise and one without has no noise."""
    x = images(2, seed=3, shape=sampler.image_shape)
    drawn = [np.asarray(n) for n in sampler.noise(2, seed=9)]
    noise = ImageNoise(drawn, np.array([True, False]))
    direction, strengths = unit(sampler.latent_dim, 5), [0.0, 1.5]
    w = sampler.encode(x)
    grid = strength_sweep(sampler, to_uint8(x).numpy(), w, direction, strengths, noise=noise)
    size = sampler.image_shape[0]
    cells = grid.reshape(2, size, 3, size, -1).transpose(0, 2, 1, 3, 4).astype(int)
    for column, strength in enumerate(strengths, 1):
        edited = sampler.edit(w, direction, strength)
        own = to_uint8(sampler.decode(edited[:1], [n[:1] for n in drawn])).numpy()[0]
        np.testing.assert_allclose(cells[0, column], own, atol=1)
        np.testing.assert_allclose(cells[1, column], to_uint8(sampler.decode(edited[1:])).numpy()[0], atol=1)
    assert np.abs(cells[0, 1] - to_uint8(sampler.decode(w[:1])).numpy()[0]).max() > 3  # the noise shows

    steps = 3
    strip = interpolation_grid(sampler, image_pairs=(x[:1], x[1:]), image_codes=(w[:1], w[1:]), steps=steps,
                               image_noise=(noise.take([0]), noise.take([1])))
    inner = strip.reshape(size, steps + 2, size, -1).transpose(1, 0, 2, 3)[1:-1].astype(int)
    np.testing.assert_allclose(inner, render(sampler, sampler.interpolate(w[:1], w[1:], steps), None), atol=1)


def test_mixing_grid_of_real_encodings(sampler):
    ranges = {name: layer_ranges(sampler)[name] for name in mixing_range_names(layer_ranges(sampler))}
    sources = sampler.styles(sampler.encode(images(3, seed=6, shape=sampler.image_shape)))
    destinations = sampler.styles(sampler.encode(images(2, seed=7, shape=sampler.image_shape)))
    grids = mixing_grid_of_styles(sampler, sources, destinations, ranges, noise=2)
    size = sampler.image_shape[0]
    for name, (start, stop) in ranges.items():
        grid = grids[name]
        assert grid.shape[:2] == (3 * size, 4 * size)
        cell = grid[2 * size : 3 * size, 3 * size : 4 * size]  # destination 1, source 2
        expected = render(sampler, sampler.mix(destinations[1:2], sources[2:3], start, stop), noise=2)[0]
        np.testing.assert_allclose(cell.astype(int), expected.astype(int), atol=1)


class DigitGenerator:
    """A stand-in G (one style input, no noise) whose image is a real '8' where w[0] > 0.5, else a
    real '3': edit success is then known by hand."""

    levels, styles_per_level, num_styles = 1, 1, 1

    def __init__(self, three, eight, latent):
        self.three, self.eight, self.latent = three, eight, latent

    def image_shape(self, level):
        return (28, 28, 1)

    def noise_shapes(self, level):
        return []

    def __call__(self, styles, level=None, blend=None, noise=None):
        eight = styles[:, 0, 0, None, None, None] > 0.5
        return tf.where(eight, self.eight, self.three)


class Zeros:
    def __init__(self, latent):
        self.latent_dim = latent

    def __call__(self, images, level=None, blend=None):
        return tf.zeros([images.shape[0], self.latent_dim])


def test_edit_success_counts_the_classifiers_readings_against_a_random_direction():
    from alae_tf.data import load_mnist

    mnist = load_mnist()
    pick = lambda digit: (mnist.test_images[mnist.test_labels == digit][0][..., None] / 127.5 - 1).astype(np.float32)  # noqa: E731
    latent = 50
    sampler = Sampler(Zeros(latent), DigitGenerator(pick(3), pick(8), latent), Zeros(latent))
    images = np.zeros((4, 28, 28, 1), np.uint8)  # every image encodes to w = 0
    toward_eight = np.eye(latent, dtype=np.float32)[0]
    strengths = [0.0, 0.4, 0.6, 3.0]
    fractions = edit_success(sampler, load_classifier(), images, toward_eight, 8, strengths, seed=7)
    assert fractions["direction"] == [0.0, 0.0, 1.0, 1.0]  # w[0] = strength crosses 0.5 between 0.4 and 0.6
    # Each random unit direction moves w[0] by strength * r[0]: an 8 only where that passes 0.5;
    # the chance level is the mean over RANDOM_DIRECTIONS of them (seeds 7 * RANDOM_DIRECTIONS + k).
    r0 = [random_unit_direction(latent, 7 * RANDOM_DIRECTIONS + k)[0] for k in range(RANDOM_DIRECTIONS)]
    assert fractions["random"] == pytest.approx([np.mean([float(s * r > 0.5) for r in r0]) for s in strengths])
    assert abs(np.linalg.norm(random_unit_direction(latent, 7)) - 1) < 1e-6
    # G(E(x)) is the real 3 for every image: read as 3, never as 8
    assert reconstructions_read_as(sampler, load_classifier(), images, 3) == 1.0
    assert reconstructions_read_as(sampler, load_classifier(), images, 8) == 0.0


def test_per_layer_projection_with_noise_refines_every_style_input(sampler):
    from alae_tf.editing.projection import project

    targets = images(2, seed=8, shape=sampler.image_shape)
    result = project(sampler, targets, steps=8, learning_rate=0.05, per_layer=True, optimize_noise=True, verbose=False)
    assert result.styles.shape == (2, sampler.num_styles, sampler.latent_dim)
    # The objective (LPIPS + MSE of the images as shown) went down; with random nets one of its two
    # terms may rise while the other falls.
    assert (result.lpips + result.mse).mean() < (result.encoder_lpips + result.encoder_mse).mean()
    assert [n.shape[1:] for n in result.noise] == sampler.noise_shapes  # the MLP: none
    if sampler.num_styles > 1:  # w+: the style inputs moved apart from the one w they started at
        assert np.abs(result.styles[:, 0] - result.styles[:, -1]).max() > 1e-4
        assert max(np.abs(n).max() for n in result.noise) > 0
    np.testing.assert_allclose(result.images, sampler.decode(result.styles, result.noise or None).numpy(), atol=1e-5)


def test_figures_render_and_encode_a_bounded_number_of_images_per_call(sampler, monkeypatch):
    """edit interpolate --steps 100000 decoded every point in one call (22.8 GB, then a crash):
    render and encode_in_calls split the batch, with the same images and codes as one call."""
    from alae_tf import grids

    styles = sampler.styles(sampler.map(tf.random.stateless_normal([7, sampler.latent_dim], seed=[1, 2])))
    pixels = to_uint8(images(7, shape=sampler.image_shape)).numpy()
    noises = [3] + ([ImageNoise([np.asarray(n) for n in sampler.noise(7, 5)], np.array([1, 0, 1, 1, 0, 0, 1], bool))]
                    if sampler.noise_shapes else [])
    whole = [render(sampler, styles, noise) for noise in noises]
    codes = grids.encode_in_calls(sampler, pixels)
    calls = []
    decode, encode = sampler.decode, sampler.encode
    monkeypatch.setattr(grids, "VALUES_PER_CALL", 3 * int(np.prod(sampler.image_shape)))  # 3 images per call
    monkeypatch.setattr(sampler, "decode", lambda w, noise=None: (calls.append(len(w)), decode(w, noise))[1])
    monkeypatch.setattr(sampler, "encode", lambda x: (calls.append(len(x)), encode(x))[1])
    np.testing.assert_array_equal(render(sampler, styles, 3), whole[0])
    assert calls == [3, 3, 1]
    calls.clear()
    # up to float32 rounding: oneDNN's convolutions may sum in another order for another batch size
    # (codes near 4 differed by 1.4e-6, 3 ulps, on an AVX2-only EPYC)
    np.testing.assert_allclose(grids.encode_in_calls(sampler, pixels), codes, rtol=2e-6, atol=1e-6)
    assert calls == [3, 3, 1]
    for noise, expected in zip(noises[1:], whole[1:]):  # each image's own noise images, or none
        np.testing.assert_array_equal(render(sampler, styles, noise), expected)
