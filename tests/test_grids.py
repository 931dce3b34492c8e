"""Style-mixing and interpolation grids on untrained tiny models (no training), and the monitor writing them."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alae_tf import schedule
from alae_tf.callbacks import TrainingMonitor
from alae_tf.config import load_preset
from alae_tf.data.batches import to_uint8 as to_uint8_tensor
from alae_tf.grids import interpolation_grid, style_mixing_grid
from alae_tf.levels import mixing_ranges
from alae_tf.inference import Sampler
from alae_tf.model import build_alae
from alae_tf.run_dir import RunDir

PSI = 0.7


def to_uint8(images):
    return to_uint8_tensor(images).numpy()


@pytest.fixture(scope="module", params=[1, 3], ids=["gray", "rgb"])
def style_model(request):
    config = load_preset("tiny_style")  # 8x8: levels 0 (4x4) and 1 (8x8), 4 style inputs
    config.model.image_shape = [8, 8, request.param]
    keras.utils.set_random_seed(0)
    model = build_alae(config)
    # Move w_avg off zero so truncation is not a plain scaling, and give the noise (zero at init) weight.
    model.mapping_ema.w_avg.assign(tf.random.stateless_normal([config.model.latent_dim], seed=[0, 9]))
    for index, block in enumerate(model.generator_ema.blocks):
        for noise in (block.noise_1, block.noise_2):
            noise.weight.assign(tf.random.stateless_normal(noise.weight.shape, seed=[index, 10]))
    model.config = config
    return model


def sampler_at(model, level):
    return Sampler.from_model(model, level=level)


def latents(model, count, seed):
    return tf.random.stateless_normal([count, model.mapping_ema.latent_dim], seed=[seed, 1])


def channels(model):
    return model.generator_ema.to_rgb[0].filters


def cell(grid, row, column, size):
    return grid[row * size : (row + 1) * size, column * size : (column + 1) * size]


def shared_noise(sampler, batch, seed=0):
    return [tf.repeat(n, batch, axis=0) for n in sampler.noise(1, seed)]


def render(sampler, styles, seed=0):
    return to_uint8(sampler.generator(styles, level=sampler.level, noise=shared_noise(sampler, styles.shape[0], seed)))


def test_mixing_ranges_split_the_style_inputs_in_use():
    assert mixing_ranges(0, 2) == {"coarse": (0, 1), "fine": (1, 2)}
    assert mixing_ranges(1, 2) == {"coarse": (0, 2), "fine": (2, 4)}
    assert mixing_ranges(2, 2) == {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 6)}
    assert mixing_ranges(3, 2) == {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 8)}  # 32x32
    assert mixing_ranges(8, 2) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}  # 1024x1024, as StyleGAN
    for level in range(9):
        spans = list(mixing_ranges(level, 2).values())
        assert spans[0][0] == 0 and spans[-1][1] == 2 * (level + 1)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("level", [0, 1])
def test_style_mixing_grid_layout(style_model, level):
    sampler = sampler_at(style_model, level)
    size, depth = 4 * 2**level, channels(style_model)
    grids = style_mixing_grid(sampler, latents(style_model, 5, 1), latents(style_model, 3, 2), truncation_psi=PSI)
    assert list(grids) == list(mixing_ranges(level, 2))
    for grid in grids.values():
        assert grid.dtype == np.uint8 and grid.shape == (4 * size, 6 * size, depth)
        assert not cell(grid, 0, 0, size).any()  # the corner is black
    first, second = grids.values()
    np.testing.assert_array_equal(first[:size], second[:size])  # same sources ...
    np.testing.assert_array_equal(first[:, :size], second[:, :size])  # ... and destinations in every grid


def test_style_mixing_cells_take_the_range_from_the_source(style_model):
    sampler = sampler_at(style_model, 1)
    size, styles = 8, style_model.generator.num_styles
    z_src, z_dst = latents(style_model, 3, 1), latents(style_model, 2, 2)
    ranges = {"none": (0, 0), "all": (0, styles), "coarse": (0, 2), "fine": (2, styles)}
    grids = style_mixing_grid(sampler, z_src, z_dst, ranges, truncation_psi=PSI, noise_seed=5)
    w_src, w_dst = style_model.mapping_ema(z_src), style_model.mapping_ema(z_dst)
    sources = render(sampler, sampler.truncate(sampler.styles(w_src), PSI), seed=5)
    destinations = render(sampler, sampler.truncate(sampler.styles(w_dst), PSI), seed=5)
    for j in range(2):
        for i in range(3):
            np.testing.assert_array_equal(cell(grids["none"], j + 1, i + 1, size), destinations[j])
            np.testing.assert_array_equal(cell(grids["all"], j + 1, i + 1, size), sources[i])
            by_hand = tf.concat([sampler.styles(w_src[i : i + 1])[:, :2],
                                 sampler.styles(w_dst[j : j + 1])[:, 2:]], axis=1)
            coarse = render(sampler, sampler.truncate(by_hand, PSI), seed=5)[0]
            # Rendered alone vs inside the grid's batch: CPU convolutions may round differently per
            # batch size, which can flip a pixel sitting on a rounding boundary by one level.
            np.testing.assert_allclose(cell(grids["coarse"], j + 1, i + 1, size).astype(int), coarse.astype(int), atol=1)
            assert not np.array_equal(coarse, sources[i]) and not np.array_equal(coarse, destinations[j])
        np.testing.assert_array_equal(cell(grids["none"], j + 1, 0, size), destinations[j])
    for i in range(3):
        np.testing.assert_array_equal(cell(grids["none"], 0, i + 1, size), sources[i])
    # coarse from the source + fine from the destination = fine from the destination's view swapped.
    swapped = style_mixing_grid(sampler, z_dst, z_src, {"fine": (2, styles)}, truncation_psi=PSI, noise_seed=5)
    np.testing.assert_array_equal(cell(swapped["fine"], 1, 1, size), cell(grids["coarse"], 1, 1, size))


def test_style_mixing_rejects_bad_ranges_and_mlp_models(style_model, tiny_config):
    z = latents(style_model, 2, 1)
    with pytest.raises(ValueError, match="not within"):
        style_mixing_grid(sampler_at(style_model, 1), z, z, {"bad": (3, 9)})
    with pytest.raises(ValueError, match="two or more style inputs"):  # the MLP's G reads one
        style_mixing_grid(Sampler.from_model(build_alae(tiny_config)), z[:, :6], z[:, :6])


@pytest.mark.parametrize("level", [0, 1])
def test_interpolation_endpoints_are_generations_and_reconstructions(style_model, level):
    sampler = sampler_at(style_model, level)
    size = 4 * 2**level
    z1, z2 = latents(style_model, 2, 3), latents(style_model, 2, 4)
    x = tf.random.stateless_uniform([3, size, size, channels(style_model)], seed=[5, 6],
                                    minval=-1, maxval=1)
    x1, x2 = x[:1], x[1:2]
    grid = interpolation_grid(sampler, (z1, z2), (x1, x2), steps=6, truncation_psi=PSI)
    assert grid.shape == (3 * size, 8 * size, x.shape[-1]) and grid.dtype == np.uint8

    def generated(z):
        return render(sampler, sampler.truncate(sampler.styles(style_model.mapping_ema(z)), PSI))

    for row in range(2):
        # The grid renders 12 images in one batch, `generated` 2: CPU kernels may round differently
        # per batch size, which can flip a pixel sitting on a rounding boundary by one level.
        np.testing.assert_allclose(cell(grid, row, 1, size).astype(int), generated(z1)[row].astype(int), atol=1)
        np.testing.assert_allclose(cell(grid, row, 6, size).astype(int), generated(z2)[row].astype(int), atol=1)
        assert not cell(grid, row, 0, size).any() and not cell(grid, row, 7, size).any()
    # One image with noise seed 0: exactly what generate() and the reconstruction call give.
    noise = sampler.noise(1, 0)
    np.testing.assert_array_equal(cell(grid, 0, 1, size), to_uint8(sampler.generate(z1[:1], PSI, noise=noise))[0])
    np.testing.assert_array_equal(cell(grid, 2, 1, size), to_uint8(sampler.reconstruct(x1, noise=noise))[0])
    np.testing.assert_array_equal(cell(grid, 2, 6, size), to_uint8(sampler.reconstruct(x2, noise=noise))[0])
    np.testing.assert_array_equal(cell(grid, 2, 0, size), to_uint8(x1)[0])
    np.testing.assert_array_equal(cell(grid, 2, 7, size), to_uint8(x2)[0])
    # In between: the images of the interpolated w (not equal to either end).
    middle = 0.6 * style_model.encoder_ema(x1, level=level) + 0.4 * style_model.encoder_ema(x2, level=level)
    expected = render(sampler, sampler.styles(middle))[0].astype(int)
    np.testing.assert_allclose(cell(grid, 2, 3, size).astype(int), expected, atol=1)


def test_grids_are_deterministic(style_model):
    sampler = sampler_at(style_model, 1)
    z = latents(style_model, 4, 7)
    x = tf.random.stateless_uniform([2, 8, 8, channels(style_model)], seed=[1, 2],
                                    minval=-1, maxval=1)
    mixing = [style_mixing_grid(sampler, z[:2], z[2:], truncation_psi=PSI) for _ in range(2)]
    for name in mixing[0]:
        np.testing.assert_array_equal(mixing[0][name], mixing[1][name])
    first, second = (interpolation_grid(sampler, (z[:2], z[2:]), (x[:1], x[1:]), truncation_psi=PSI)
                     for _ in range(2))
    np.testing.assert_array_equal(first, second)


def test_interpolation_grid_of_an_mlp_model(tiny_config):
    sampler = Sampler.from_model(build_alae(tiny_config))
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2], minval=-1, maxval=1)
    grid = interpolation_grid(sampler, image_pairs=(x[:2], x[2:]), steps=4)
    assert grid.shape == (2 * 8, 6 * 8, 1)
    np.testing.assert_array_equal(cell(grid, 1, 1, 8), to_uint8(sampler.reconstruct(x[1:2]))[0])
    np.testing.assert_array_equal(cell(grid, 1, 4, 8), to_uint8(sampler.reconstruct(x[3:4]))[0])
    with pytest.raises(ValueError, match="pass z_pairs"):
        interpolation_grid(sampler)


def held_out(depth, squeeze=False):
    def test_images(resolution, count):
        resolution = resolution or 8
        images = np.random.default_rng(resolution).integers(0, 256, (count, resolution, resolution, depth), np.uint8)
        return images[..., 0] if squeeze else images

    return test_images


def png_sizes(directory):
    return {path.name: Image.open(path).size for path in sorted(directory.glob("*.png"))}  # (width, height)


def test_monitor_writes_style_grids_at_the_current_level(style_model, tmp_path):
    monitor = TrainingMonitor(RunDir(tmp_path), test_images=held_out(channels(style_model)), latent_dim=8, seed=0,
                              log_every=10, sample_every=10, truncation_psi=PSI)
    monitor.set_model(style_model)
    phases = schedule.phases(style_model.config)
    style_model.enter_phase(phases[0])
    monitor.write_grids(10)
    style_model.enter_phase(phases[1])
    monitor.write_grids(20)
    assert png_sizes(tmp_path / "samples") == {
        "interpolations_0000010.png": (40, 24), "interpolations_0000020.png": (80, 48),
        "reconstructions_0000010.png": (32, 32), "reconstructions_0000020.png": (64, 64),
        "samples_0000010.png": (32, 32), "samples_0000020.png": (64, 64),
        "style_mixing_coarse_0000010.png": (24, 20), "style_mixing_coarse_0000020.png": (48, 40),
        "style_mixing_fine_0000010.png": (24, 20), "style_mixing_fine_0000020.png": (48, 40),
    }
    assert list((tmp_path / "logs").iterdir())  # TensorBoard events


def test_monitor_draws_a_level_fading_in_at_the_blend_being_trained(style_model, tmp_path):
    """The grids of a level fading in were drawn at blend 1 (the new level, barely trained): they
    looked like a divergence. The reference draws them at the blend it trains, its held-out images
    blended as its training images are."""
    phase = schedule.phases(style_model.config)[1]
    step = phase.first_step + 3
    blend = schedule.fading_blend(phase, step)
    assert 0.05 < blend < 0.5 and schedule.fading_blend(phase, phase.faded_in_step) is None
    style_model.enter_phase(phase)
    monitor = TrainingMonitor(RunDir(tmp_path), test_images=held_out(channels(style_model)), latent_dim=8, seed=0,
                              log_every=10, sample_every=10, truncation_psi=PSI)
    monitor.set_model(style_model)
    monitor.write_grids(step)
    samples = np.asarray(Image.open(tmp_path / "samples" / f"samples_{step:07d}.png"), np.int16).reshape(64, 64, -1)
    fading, faded_in = (Sampler.from_model(style_model, level=1, blend=b) for b in (blend, None))
    for sampler, near in ((fading, True), (faded_in, False)):
        first = to_uint8(sampler.generate(monitor.fixed_z[:1], PSI, noise=[n[:1] for n in sampler.noise(64, 0)]))[0]
        assert (np.abs(cell(samples, 0, 0, 8) - first).max() <= 1) == near
    # The first held-out image, blended by hand: 2x2 means, repeated, mixed in by 1 - blend.
    image = held_out(channels(style_model))(8, 32)[0] / 127.5 - 1.0
    coarse = image.reshape(4, 2, 4, 2, -1).mean(axis=(1, 3)).repeat(2, axis=0).repeat(2, axis=1)
    expected = np.clip(np.round((blend * image + (1 - blend) * coarse + 1.0) * 127.5), 0, 255)
    reconstructions = np.asarray(Image.open(tmp_path / "samples" / f"reconstructions_{step:07d}.png"), np.int16)
    assert np.abs(cell(reconstructions.reshape(64, 64, -1), 0, 0, 8) - expected).max() <= 1


def test_monitor_grids_run_the_networks_a_few_images_at_a_time(style_model, tmp_path, monkeypatch):
    """At 1024x1024 the 64 samples in one call took ~38 GB: the grids' calls take at most
    images_per_call images (here 5: VALUES_PER_CALL shrunk), and the pictures stay the same."""
    from alae_tf import grids

    style_model.enter_phase(schedule.phases(style_model.config)[1])
    whole = TrainingMonitor(RunDir(tmp_path / "whole"), test_images=held_out(channels(style_model)), latent_dim=8,
                            seed=0, log_every=10, sample_every=10, truncation_psi=PSI)
    whole.set_model(style_model)
    whole.write_grids(10)
    monkeypatch.setattr(grids, "VALUES_PER_CALL", 5 * 8 * 8 * channels(style_model))
    batches = []
    for name in ("generate", "reconstruct"):
        original = getattr(Sampler, name)
        monkeypatch.setattr(Sampler, name, lambda self, x, *args, original=original, **kw: batches.append(len(x)) or original(self, x, *args, **kw))
    chunked = TrainingMonitor(RunDir(tmp_path / "chunked"), test_images=held_out(channels(style_model)), latent_dim=8,
                              seed=0, log_every=10, sample_every=10, truncation_psi=PSI)
    chunked.set_model(style_model)
    chunked.write_grids(10)
    assert batches[:13] == [5] * 12 + [4] and batches[13:20] == [5] * 6 + [2]  # 64 samples, then 32 reconstructions
    for name in ("samples_0000010.png", "reconstructions_0000010.png"):
        a, b = (np.asarray(Image.open(tmp_path / run / "samples" / name), np.int16) for run in ("whole", "chunked"))
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3, name


def test_monitor_writes_latent_and_encoder_interpolations_for_an_mlp_model(tiny_config, tmp_path):
    monitor = TrainingMonitor(RunDir(tmp_path), test_images=held_out(1), latent_dim=6, seed=0,
                              log_every=10, sample_every=10)
    monitor.set_model(build_alae(tiny_config))
    monitor.write_grids(10)
    # 3 rows between mapped latents and 3 between encodings (the same grid as StyleALAE's); no
    # style mixing: the MLP's generator has one style input.
    assert png_sizes(tmp_path / "samples") == {
        "interpolations_0000010.png": (80, 48), "reconstructions_0000010.png": (64, 64),
        "samples_0000010.png": (64, 64),
    }
