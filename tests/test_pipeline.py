"""The one batch pipeline (alae_tf.data.batches): schema, scaling, seeded resumable stream, style-mixing draws."""

import numpy as np
import pytest
import tensorflow as tf

from alae_tf import batch as schema
from alae_tf import schedule
from alae_tf.data import ImageSource
from alae_tf.data.batches import to_model_range, to_uint8, training_batches
from alae_tf.schedule import Phase
from alae_tf.training import fit_segments


def take(dataset, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def one_level(resolution, batch_size):
    """The single open-ended phase of a one-level (MLP) model."""
    return Phase(level=0, resolution=resolution, first_step=0, end_step=None, batch_size=batch_size,
                 learning_rate=0.002, first_image=0, fade_images=0)


def mlp_batches(images, *, batch_size=8, latent_dim=6, seed=0, start_step=0, mixing_probability=0.0):
    """Batches as the trainer makes them for the MLP: one level, one style."""
    source = images if isinstance(images, ImageSource) else ImageSource.from_arrays(images)
    return training_batches(source, one_level(source.resolution, batch_size), start_step=start_step,
                            latent_dim=latent_dim, seed=seed, num_styles=1, styles_in_use=1,
                            mixing_probability=mixing_probability)


def numbered(count, side=4):
    """`count` flat images, image i filled with the value i (so a batch says which images it holds)."""
    return np.repeat(np.arange(count, dtype=np.uint8), side * side).reshape(count, side, side)


def image_ids(batch):
    return np.rint((batch[schema.IMAGES][:, 0, 0, 0] + 1) * 127.5).astype(int)


def test_batches_are_scaled_shaped_and_carry_three_latents(tiny_images):
    batch = take(mlp_batches(tiny_images), 1)[0]
    assert batch[schema.IMAGES].shape == (8, 8, 8, 1) and batch[schema.IMAGES].dtype == np.float32
    assert batch[schema.IMAGES].min() >= -1.0 and batch[schema.IMAGES].max() <= 1.0
    for update in schema.UPDATES:
        assert batch[update.z].shape == (8, 6)
    assert not np.allclose(batch[schema.DISCRIMINATOR.z], batch[schema.GENERATOR.z])


def test_a_one_level_28x28_phase_carries_the_full_schema(tiny_config):
    tiny_config.model.image_shape = [28, 28, 1]
    phase, = schedule.phases(tiny_config)
    images = np.random.default_rng(4).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    batch = take(training_batches(ImageSource.from_arrays(images), phase, start_step=5, latent_dim=6, seed=0,
                                  num_styles=1, styles_in_use=1, mixing_probability=0.9), 1)[0]
    expected = {schema.IMAGES, schema.BLEND, schema.NOISE_SEED}
    expected |= {update.z for update in schema.UPDATES}
    expected |= {key for update in schema.MIXING_UPDATES for key in (update.z_mix, update.crossover)}
    assert set(batch) == expected
    assert batch[schema.IMAGES].shape == (8, 28, 28, 1) and batch[schema.IMAGES].dtype == np.float32
    for update in schema.MIXING_UPDATES:
        assert batch[update.z_mix].shape == (8, 6) and batch[update.z_mix].dtype == np.float32
        assert batch[update.crossover].shape == (8,) and batch[update.crossover].dtype == np.int32
    np.testing.assert_array_equal(batch[schema.BLEND], np.ones(8, np.float32))  # one level: nothing fades in
    assert batch[schema.BLEND].dtype == np.float32
    np.testing.assert_array_equal(batch[schema.NOISE_SEED], np.full(8, 5, np.int64))
    assert batch[schema.NOISE_SEED].dtype == np.int64


def test_crossovers_never_mix_with_one_style():
    """num_styles == styles_in_use == 1 (the MLP): every row's crossover is 1 = num_styles, however likely mixing is."""
    for batch in take(mlp_batches(numbered(64), mixing_probability=1.0), 20):
        for update in schema.MIXING_UPDATES:
            np.testing.assert_array_equal(batch[update.crossover], np.ones(8, np.int32))


def test_style_mixing_points_are_in_bounds_and_mix_at_the_given_rate():
    source = ImageSource.from_arrays(numbered(64))
    phase = Phase(level=1, resolution=4, first_step=0, end_step=None, batch_size=16, learning_rate=0.002,
                  first_image=0, fade_images=0)
    batches = take(training_batches(source, phase, start_step=0, latent_dim=4, seed=0, num_styles=8,
                                    styles_in_use=4, mixing_probability=0.75), 50)
    points = np.concatenate([b[update.crossover] for b in batches for update in schema.MIXING_UPDATES])
    mixed = points[points != 8]
    assert mixed.min() == 1 and mixed.max() == 3  # uniform over [1, styles in use)
    assert abs(len(mixed) / len(points) - 0.75) < 0.05


def test_pixel_scaling_round_trips_exactly(tiny_images):
    scaled = to_model_range(tiny_images[:64]).numpy()
    assert scaled[0, 0, 0, 0] == pytest.approx(tiny_images[0, 0, 0] / 127.5 - 1.0)
    np.testing.assert_array_equal(to_uint8(scaled).numpy()[..., 0], tiny_images)


def test_to_uint8_matches_numpy_rint_clips_and_runs_in_a_graph():
    images = np.random.default_rng(3).uniform(-1.2, 1.2, (64, 8, 8, 3)).astype(np.float32)
    converted = tf.function(to_uint8)(tf.constant(images))
    assert converted.dtype == tf.uint8
    expected = np.clip(np.rint((images + np.float32(1)) * np.float32(127.5)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(converted.numpy(), expected)
    assert converted.numpy().min() == 0 and converted.numpy().max() == 255
    assert to_model_range(np.zeros((2, 4, 4), np.uint8)).shape == (2, 4, 4, 1)


@pytest.mark.parametrize("count", [64, 60])  # batches aligned with epochs, and batches spanning two epochs
def test_each_epoch_of_the_stream_visits_every_image_once_in_a_new_order(count):
    """(The MLP once dropped each epoch's last partial batch; the stream drops nothing: batches may span epochs.)"""
    batches = take(mlp_batches(numbered(count)), 2 * count // 8)
    stream = np.concatenate([image_ids(b) for b in batches])
    first, second = stream[:count], stream[count : 2 * count]
    assert sorted(first) == list(range(count)) and sorted(second) == list(range(count))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("count", [64, 60])
@pytest.mark.parametrize("start", [3, 8, 13])  # mid-epoch, an epoch boundary (64 images), the next epoch
def test_starting_at_step_k_continues_the_same_stream(count, start):
    images = np.random.default_rng(0).integers(0, 256, (count, 8, 8), dtype=np.uint8)
    whole = take(mlp_batches(images, seed=5), start + 3)
    resumed = take(mlp_batches(images, seed=5, start_step=start), 3)
    for a, b in zip(whole[start:], resumed):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_seed_changes_order_and_latents(tiny_images):
    a = take(mlp_batches(tiny_images, seed=0), 1)[0]
    b = take(mlp_batches(tiny_images, seed=1), 1)[0]
    assert not np.array_equal(a[schema.IMAGES], b[schema.IMAGES])
    assert not np.array_equal(a[schema.DISCRIMINATOR.z], b[schema.DISCRIMINATOR.z])


def test_latents_are_standard_normal():
    images = np.zeros((512, 4, 4), np.uint8)
    batches = take(mlp_batches(images, batch_size=256, latent_dim=50), 4)
    z = np.concatenate([b[schema.RECIPROCITY.z] for b in batches])
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02


def test_batch_larger_than_dataset_is_refused(tiny_images):
    with pytest.raises(ValueError, match="larger than the dataset"):
        mlp_batches(tiny_images, batch_size=128)


def test_a_start_step_outside_the_phase_is_refused(tiny_images):
    phase = Phase(level=1, resolution=8, first_step=10, end_step=20, batch_size=8, learning_rate=0.002,
                  first_image=80, fade_images=40)
    source = ImageSource.from_arrays(tiny_images)
    for step in (9, 20):
        with pytest.raises(ValueError, match=f"step {step} is outside level 1 \\(steps 10 to 19\\)"):
            training_batches(source, phase, start_step=step, latent_dim=6, seed=0, num_styles=4, styles_in_use=4,
                             mixing_probability=0.0)


def test_the_real_images_of_a_level_fading_in_are_blended_as_the_reference_blends_them(tiny_images):
    """The reference (train_alae.py) mixes each real batch with its 2x2-mean picture, upsampled,
    by 1 - blend while a level fades in; the pipeline gave the plain images."""
    source = ImageSource.from_arrays(tiny_images)

    def first_batch(fade_images, step):
        phase = Phase(level=1, resolution=8, first_step=10, end_step=30, batch_size=8, learning_rate=0.002,
                      first_image=80, fade_images=fade_images)
        return take(training_batches(source, phase, start_step=step, latent_dim=6, seed=0, num_styles=4,
                                     styles_in_use=4, mixing_probability=0.0), 1)[0]

    plain, fading = first_batch(0, 11), first_batch(40, 11)
    blend = (1 - np.cos(0.2 * np.pi)) / 2  # t = 1 step x 8 images / 40; sin(t pi - pi/2)/2 + 1/2
    np.testing.assert_allclose(fading[schema.BLEND], np.full(8, blend), rtol=1e-6)
    images = plain[schema.IMAGES]
    coarse = images.reshape(8, 4, 2, 4, 2, 1).mean(axis=(2, 4)).repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_allclose(fading[schema.IMAGES], blend * images + (1 - blend) * coarse, atol=1e-6)
    assert np.abs(fading[schema.IMAGES] - images).max() > 0.5
    np.testing.assert_array_equal(first_batch(40, 15)[schema.IMAGES], first_batch(0, 15)[schema.IMAGES])  # faded in


@pytest.mark.parametrize(
    "start, total, expected",
    [
        (0, 30, [(0, 3, 10, 0)]),  # whole epochs only
        (0, 25, [(0, 2, 10, 0), (2, 3, 5, 20)]),  # a partial last epoch (--steps)
        (4, 30, [(0, 1, 6, 4), (1, 3, 10, 10)]),  # resumed mid-epoch
        (4, 7, [(0, 1, 3, 4)]),  # within one epoch
        (12, 25, [(1, 2, 8, 12), (2, 3, 5, 20)]),
    ],
)
def test_fit_segments_cover_exactly_the_remaining_steps(start, total, expected):
    segments = fit_segments(start, total, epoch_steps=10)
    assert segments == expected
    assert sum(steps * (epochs - initial) for initial, epochs, steps, _ in segments) == total - start


def test_random_flips_are_drawn_per_image_keyed_by_seed_and_step_and_resume_exactly():
    """data.random_flip, the official DATASET.FLIP_IMAGES: each image left-right flipped with
    probability 1/2; the same images, latents and flips on a resume, others for another seed."""
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
    source, phase = ImageSource.from_arrays(images), one_level(8, 32)

    def batches(start_step=0, seed=0, random_flip=True):
        return training_batches(source, phase, start_step=start_step, latent_dim=4, seed=seed, num_styles=1,
                                styles_in_use=1, mixing_probability=0.0, random_flip=random_flip)

    plain, flipped = take(batches(random_flip=False), 3), take(batches(), 3)
    mirrored_count = 0
    for a, b in zip(plain, flipped):
        same = np.all(a[schema.IMAGES] == b[schema.IMAGES], axis=(1, 2, 3))
        mirrored = np.all(a[schema.IMAGES][:, :, ::-1] == b[schema.IMAGES], axis=(1, 2, 3))
        assert np.all(same | mirrored) and not np.any(same & mirrored)  # random images: never symmetric
        mirrored_count += int(mirrored.sum())
        np.testing.assert_array_equal(a[schema.DISCRIMINATOR.z], b[schema.DISCRIMINATOR.z])
    assert 30 <= mirrored_count <= 66  # of 96: binomial(96, 1/2) within 3.7 standard deviations
    np.testing.assert_array_equal(take(batches(start_step=2), 1)[0][schema.IMAGES], flipped[2][schema.IMAGES])
    other_seed = take(batches(seed=1, random_flip=False), 1)[0], take(batches(seed=1), 1)[0]
    flips_seed_1 = np.all(other_seed[0][schema.IMAGES][:, :, ::-1] == other_seed[1][schema.IMAGES], axis=(1, 2, 3))
    flips_seed_0 = np.all(plain[0][schema.IMAGES][:, :, ::-1] == flipped[0][schema.IMAGES], axis=(1, 2, 3))
    assert not np.array_equal(flips_seed_0, flips_seed_1)
