import numpy as np
import pytest

from alae_tf.data.pipeline import LATENT_KEYS, eval_batches, to_uint8, training_batches
from alae_tf.train import fit_segments


def take(dataset, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def test_batches_are_scaled_shaped_and_carry_three_latents(tiny_images):
    batch = take(training_batches(tiny_images, batch_size=8, latent_dim=6, seed=0), 1)[0]
    assert batch["images"].shape == (8, 8, 8, 1) and batch["images"].dtype == np.float32
    assert batch["images"].min() >= -1.0 and batch["images"].max() <= 1.0
    for key in LATENT_KEYS:
        assert batch[key].shape == (8, 6)
    assert not np.allclose(batch["z_d"], batch["z_g"])


def test_pixel_scaling_round_trips_exactly(tiny_images):
    scaled = next(iter(eval_batches(tiny_images, batch_size=64))).numpy()
    assert scaled[0, 0, 0, 0] == pytest.approx(tiny_images[0, 0, 0] / 127.5 - 1.0)
    np.testing.assert_array_equal(to_uint8(scaled)[..., 0], tiny_images)


def test_each_epoch_visits_every_image_once_in_a_new_order(tiny_images):
    images = np.arange(64, dtype=np.uint8).reshape(64, 1, 1)  # pixel value = image index
    batches = take(training_batches(images, batch_size=8, latent_dim=2, seed=0), 16)
    ids = [np.rint((b["images"].reshape(-1) + 1) * 127.5).astype(int) for b in batches]
    first, second = np.concatenate(ids[:8]), np.concatenate(ids[8:])
    assert sorted(first) == list(range(64)) and sorted(second) == list(range(64))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("start", [3, 8, 13])  # mid-epoch, an epoch boundary, the next epoch
def test_starting_at_step_k_continues_the_same_stream(tiny_images, start):
    whole = take(training_batches(tiny_images, batch_size=8, latent_dim=6, seed=5), start + 3)
    resumed = take(training_batches(tiny_images, batch_size=8, latent_dim=6, seed=5, start_step=start), 3)
    for a, b in zip(whole[start:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_seed_changes_order_and_latents(tiny_images):
    a = take(training_batches(tiny_images, batch_size=8, latent_dim=6, seed=0), 1)[0]
    b = take(training_batches(tiny_images, batch_size=8, latent_dim=6, seed=1), 1)[0]
    assert not np.array_equal(a["images"], b["images"]) and not np.array_equal(a["z_d"], b["z_d"])


def test_latents_are_standard_normal():
    images = np.zeros((512, 2, 2), np.uint8)
    z = np.concatenate([b["z_ae"] for b in take(training_batches(images, batch_size=256, latent_dim=50, seed=0), 4)])
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02


def test_batch_larger_than_dataset_is_refused(tiny_images):
    with pytest.raises(ValueError, match="larger than the dataset"):
        training_batches(tiny_images, batch_size=128, latent_dim=6, seed=0)


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
