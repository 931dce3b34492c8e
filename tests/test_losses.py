import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf import losses
from alae_tf.model import build_alae


def softplus(x):
    return np.log1p(np.exp(x))


def test_discriminator_loss_by_hand():
    d_fake = np.array([0.5, -1.0, 2.0], np.float32)
    d_real = np.array([1.0, 0.0, -3.0], np.float32)
    expected = np.mean(softplus(d_fake) + softplus(-d_real))
    # e.g. first pair: log(1 + e^0.5) + log(1 + e^-1) = 0.974077 + 0.313262
    assert softplus(0.5) + softplus(-1.0) == pytest.approx(1.287339, abs=1e-6)
    assert float(losses.discriminator_loss(d_fake, d_real)) == pytest.approx(expected, rel=1e-6)


def test_generator_loss_by_hand():
    d_fake = np.array([0.0, 3.0], np.float32)
    # softplus(-0) = log 2, softplus(-3) = log(1 + e^-3)
    expected = (np.log(2.0) + np.log1p(np.exp(-3.0))) / 2
    assert float(losses.generator_loss(d_fake)) == pytest.approx(expected, rel=1e-6)


def test_r1_penalty_by_hand():
    grads = np.zeros((2, 2, 2, 1), np.float32)
    grads[0, 0, 0, 0], grads[0, 1, 1, 0] = 3.0, 4.0  # |g_0|^2 = 25
    grads[1, 0, 1, 0] = 1.0  # |g_1|^2 = 1
    assert float(losses.r1_penalty(grads, gamma=10.0)) == pytest.approx(0.5 * 10.0 * (25 + 1) / 2)


def test_latent_reciprocity_value_and_gradient_path():
    w = tf.constant([[1.0, 2.0], [0.0, -1.0]])
    w_rec = tf.constant([[1.5, 2.0], [0.0, 1.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([w, w_rec])
        loss = losses.latent_reciprocity_loss(w, w_rec)
    assert float(loss) == pytest.approx((0.25 + 4.0) / 4)
    # The target F(z) is a constant: no gradient reaches w through it...
    assert tape.gradient(loss, w) is None
    # ...while the reconstruction gets 2 (w_rec - w) / n.
    np.testing.assert_allclose(tape.gradient(loss, w_rec), [[0.25, 0.0], [0.0, 1.0]])


@pytest.fixture
def float64_everywhere():
    # keras.Input takes floatx (not the policy): both must be float64 for exact differences.
    keras.config.set_floatx("float64")
    keras.mixed_precision.set_global_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.mixed_precision.set_global_policy("float32")


def test_r1_gradients_match_finite_differences(tiny_config, float64_everywhere):
    keras.utils.set_random_seed(3)
    model = build_alae(tiny_config)
    images = tf.constant(np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 1)))
    d_real, grads = model.real_logits_and_gradients(images)

    def score_sum(x):
        return float(tf.reduce_sum(model.discriminator(model.encoder(x))))

    eps = 1e-6
    numeric = np.zeros(images.shape)
    base = images.numpy()
    for index in np.ndindex(*images.shape):
        plus, minus = base.copy(), base.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (score_sum(tf.constant(plus)) - score_sum(tf.constant(minus))) / (2 * eps)
    np.testing.assert_allclose(grads.numpy(), numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(numeric).max() > 1e-3  # a real signal, not two zeros
    # And the penalty built on them: (gamma / 2) * mean over images of the squared gradient norm.
    expected = 0.5 * 10.0 * np.mean(np.sum(numeric**2, axis=(1, 2, 3)))
    assert float(losses.r1_penalty(grads, 10.0)) == pytest.approx(expected, rel=1e-5)
