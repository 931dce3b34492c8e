"""FD-MNIST and its classifier, memorization and the Parzen-window NLL, on real MNIST slices and toy data."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from alae_tf.errors import ALAEError
from alae_tf.metrics.context import EvalContext
from alae_tf.metrics.feature_stats import frechet_distance
from alae_tf.metrics.mnist_classifier import ClassifierWeightsError, accuracy, load_classifier, to_classifier_input
from alae_tf.metrics.mnist_metrics import (classifier_features, flat_unit, memorization, memorization_stats,
                                           nearest_distances, parzen_log_likelihoods, select_sigma)
from alae_tf.data import load_mnist


@pytest.fixture(scope="module")
def mnist():
    return load_mnist("package")


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_shipped_classifier_accuracy_on_a_test_slice(mnist, classifier):
    assert accuracy(classifier, mnist.test_images[:2000], mnist.test_labels[:2000]) > 0.98


def test_padded_32x32_digits_are_cropped_back_exactly(mnist):
    digits = mnist.test_images[:5]
    padded = np.pad(digits, ((0, 0), (2, 2), (2, 2)))[..., np.newaxis]
    np.testing.assert_array_equal(to_classifier_input(padded), to_classifier_input(digits))
    with pytest.raises(ALAEError, match="28x28 or 32x32"):
        to_classifier_input(np.zeros((2, 30, 30), np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_non_uint8_pixels_are_refused_not_scaled_by_255(dtype):
    """Generated images in [-1, 1] (or [0, 1]) divided by 255 would read as near-black digits."""
    images = np.zeros((2, 28, 28), dtype)
    for convert in (to_classifier_input, flat_unit):
        with pytest.raises(ALAEError, match="expected uint8 pixels"):
            convert(images)


def test_fd_mnist_separates_real_digits_from_noise(mnist, classifier):
    train = classifier_features(mnist.train_images[:3000], classifier=classifier)
    test = classifier_features(mnist.test_images[:3000], classifier=classifier)
    noise = np.random.default_rng(0).integers(0, 256, (3000, 28, 28), dtype=np.uint8)
    noise_features = classifier_features(noise, classifier=classifier)
    assert abs(frechet_distance(test, test)) < 1e-6 * np.trace(np.cov(test, rowvar=False))
    real_vs_real, real_vs_noise = frechet_distance(train, test), frechet_distance(test, noise_features)
    assert real_vs_real * 20 < real_vs_noise


def test_missing_classifier_weights_name_the_retraining_command(tmp_path):
    with pytest.raises(ClassifierWeightsError, match="python -m alae_tf.metrics.train_mnist_classifier --out"):
        load_classifier(tmp_path / "absent.weights.h5")


def test_retraining_cli_help_runs_without_pythons_warning():
    """`python -m alae_tf.metrics.mnist_classifier` warned at every run, --help too (alae_tf.metrics
    imports that module before runpy ran it); the command is a module of its own now."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "alae_tf.metrics.train_mnist_classifier",
                           "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "--out" in done.stdout and "RuntimeWarning" not in done.stderr, done.stderr[-2000:]


def test_the_retraining_cli_refuses_zero_epochs(capsys):
    """--epochs 0 wrote the untrained network's weights and exited 0 (test accuracy 0.05; an audit)."""
    from alae_tf.metrics import train_mnist_classifier

    with pytest.raises(SystemExit) as exit_info:
        train_mnist_classifier.parse_args(["--out", "c.weights.h5", "--epochs", "0"])
    assert exit_info.value.code == 2 and "error: --epochs must be at least 1, got 0" in capsys.readouterr().err


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(1)
    queries, references = rng.uniform(size=(37, 20)), rng.uniform(size=(101, 20))
    brute = np.sqrt(((queries[:, None, :] - references[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(nearest_distances(queries, references, batch_size=8), brute, rtol=1e-6)


def memorization_context(mnist, generated_uint8):
    """An EvalContext on a slice of MNIST whose 'sampler' generates the given images, in order."""
    images = np.asarray(generated_uint8, np.float32) / 127.5 - 1.0
    sampler = SimpleNamespace(generate=lambda z, **_: images[: len(z)], noise=lambda batch, seed: [])
    data = SimpleNamespace(train_images=mnist.train_images[:5000], test_images=mnist.test_images[:1000])
    config = SimpleNamespace(model=SimpleNamespace(kind="alae", latent_dim=2))
    return EvalContext(sampler=sampler, config=config, data=data, num_samples=len(generated_uint8),
                      batch_size=len(generated_uint8))


def test_memorization_flags_training_copies_and_not_test_images(mnist):
    copies = memorization(memorization_context(mnist, mnist.train_images[:300]))
    assert copies["memorization_generated_nn_median"] == 0.0
    assert copies["memorization_close_fraction"] == 1.0
    held_out = memorization(memorization_context(mnist, mnist.test_images[1000:1300]))
    assert held_out["memorization_close_fraction"] < 0.05
    assert 0.8 < held_out["memorization_median_ratio"] < 1.25


def test_memorization_summary_by_hand():
    stats = memorization_stats(np.array([0.0, 1.0, 2.0, 9.0]), np.arange(1.0, 102.0))
    # Test set: median 51, 1st percentile 2.0 -> generated 0.0 and 1.0 fall below it.
    assert stats == {"memorization_generated_nn_median": 1.5, "memorization_test_nn_median": 51.0,
                     "memorization_median_ratio": 1.5 / 51.0, "memorization_close_fraction": 0.5}


def test_parzen_log_likelihood_matches_a_gaussian_mixture():
    rng = np.random.default_rng(2)
    centers, queries = rng.uniform(size=(50, 3)), rng.uniform(size=(7, 3))
    sigmas = [0.05, 0.3]
    expected = [np.log(np.mean([multivariate_normal(c, s**2 * np.eye(3)).pdf(queries) for c in centers], axis=0))
                for s in sigmas]
    np.testing.assert_allclose(parzen_log_likelihoods(queries, centers, sigmas, batch_size=3), expected, rtol=1e-9)


def test_sigma_is_chosen_by_validation_likelihood():
    # Centres and validation points from N(0, 0.2^2 I) in 2-d: the best window is neither end of the grid.
    rng = np.random.default_rng(3)
    centers, validation = 0.2 * rng.standard_normal((2000, 2)), 0.2 * rng.standard_normal((500, 2))
    grid = np.array([0.001, 0.01, 0.1, 1.0, 10.0])
    means = parzen_log_likelihoods(validation, centers, grid).mean(axis=1)
    assert select_sigma(validation, centers, grid) == grid[np.argmax(means)] == 0.1


@pytest.mark.parametrize("kind, noted", [("ae_l1", True), ("ae_l2", True), ("vae", False), ("alae", False)])
def test_samples_of_a_plain_autoencoder_carry_a_note_once(kind, noted, capsys):
    config = SimpleNamespace(model=SimpleNamespace(kind=kind, latent_dim=2))
    ctx = EvalContext(sampler=None, config=config, data=None)
    first, again = ctx.latents(3), ctx.latents(3)
    np.testing.assert_array_equal(first, again)  # the note changes nothing drawn
    out = capsys.readouterr().out
    assert out.count("is a plain autoencoder") == (1 if noted else 0)


def test_a_stopped_retraining_leaves_the_earlier_weights_whole(tmp_path, monkeypatch, capsys):
    """Its --out is by default the shipped weights file: a stop while it was written (or a training
    stopped by SIGTERM, which ended the process without a word) could leave half a file there."""
    from types import SimpleNamespace

    from alae_tf.data import mnist
    from alae_tf.metrics import mnist_classifier, train_mnist_classifier
    from alae_tf.stop_signals import Stopped

    out = tmp_path / "c.weights.h5"
    out.write_bytes(b"earlier weights")

    def stopped_while_saving(model, path):
        path.write_bytes(b"half a file")
        raise Stopped()

    monkeypatch.setattr(mnist, "load_mnist", lambda *args: SimpleNamespace(test_images=None, test_labels=[0]))
    monkeypatch.setattr(mnist_classifier, "train_classifier", lambda data, epochs, seed: "the model")
    monkeypatch.setattr(mnist_classifier, "accuracy", lambda *args: 0.5)
    monkeypatch.setattr(mnist_classifier, "save_weights", stopped_while_saving)
    assert train_mnist_classifier.main(["--out", str(out)]) == 143
    assert out.read_bytes() == b"earlier weights" and list(tmp_path.iterdir()) == [out]
    assert capsys.readouterr().err.endswith(f"interrupted (SIGTERM); {out} was not written\n")
