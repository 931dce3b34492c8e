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
    d_real, grads = model.scores_and_input_gradients(images)

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


D_FAKE = np.array([0.5, -1.0, 2.0], np.float32)
D_REAL = np.array([1.0, 0.0, -3.0], np.float32)


def test_every_configured_adversarial_loss_exists():
    from alae_tf.config import ADVERSARIAL_LOSSES

    for name in ADVERSARIAL_LOSSES:
        pair = losses.adversarial_loss(name, energy_margin=1.0, began_k=0.5)
        assert np.isfinite(float(pair.discriminator(D_FAKE, D_REAL))) and np.isfinite(float(pair.generator(D_FAKE)))
    assert losses.adversarial_loss("softplus") == losses.AdversarialLoss(losses.discriminator_loss, losses.generator_loss)


@pytest.mark.parametrize("name, discriminator, generator", [
    # minimax: D as softplus; G = mean(log(1 - sigmoid(d))) = -mean(softplus(d))
    ("minimax", np.mean(softplus(D_FAKE) + softplus(-D_REAL)), -(softplus(0.5) + softplus(-1.0) + softplus(2.0)) / 3),
    # least squares: ((1 - 1)^2 + (0 - 1)^2 + (-3 - 1)^2) / 6 + (0.25 + 1 + 4) / 6; G: (0.25 + 4 + 1) / 6
    ("least_squares", (0 + 1 + 16) / 6 + (0.25 + 1 + 4) / 6, (0.25 + 4 + 1) / 6),
    # hinge: relu(1 - real) = 0, 1, 4; relu(1 + fake) = 1.5, 0, 3; G = -mean(fake) = -0.5
    ("hinge", 5 / 3 + 4.5 / 3, -0.5),
])
def test_adversarial_losses_by_hand(name, discriminator, generator):
    pair = losses.adversarial_loss(name)
    assert float(pair.discriminator(D_FAKE, D_REAL)) == pytest.approx(discriminator, rel=1e-6)
    assert float(pair.generator(D_FAKE)) == pytest.approx(generator, rel=1e-6)


def test_hinges_game_on_both_of_ds_inputs_is_the_critic_score():
    """Where both of D's inputs move (BiGAN's E and G), hinge's generator side is the critic score on
    each pair, d_real - d_fake (Lim & Ye; BigBiGAN): every pair keeps a gradient of 1/N. D's hinge with
    the labels swapped (before 2026-12-05) gave none to the pairs D was fooled by past the margin."""
    d_real = tf.constant([-1.5, -2.0, 0.3])  # the first two fooled past the margin, as are
    d_fake = tf.constant([1.5, 2.0, -0.2])  # these first two
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([d_real, d_fake])
        loss = losses.adversarial_loss("hinge").generator_of_both_inputs(d_fake, d_real)
    assert float(loss) == pytest.approx((-1.5 - 2.0 + 0.3) / 3 - (1.5 + 2.0 - 0.2) / 3)
    np.testing.assert_allclose(tape.gradient(loss, d_fake).numpy(), [-1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, d_real).numpy(), [1 / 3] * 3, rtol=1e-6)
    # softplus swaps the labels: softplus(d_real) + softplus(-d_fake), averaged
    swapped = losses.adversarial_loss("softplus").generator_of_both_inputs(d_fake, d_real)
    assert float(swapped) == pytest.approx(np.mean(softplus(d_real.numpy())) + np.mean(softplus(-d_fake.numpy())), rel=1e-6)


# Nowozin et al. 2016, table 6: output activation g_f(v) and conjugate f*(t), as the paper writes them.
TEXTBOOK = {
    "kl": (lambda v: v, lambda t: np.exp(t - 1)),
    "reverse_kl": (lambda v: -np.exp(-v), lambda t: -1 - np.log(-t)),
    "pearson": (lambda v: v, lambda t: t ** 2 / 4 + t),
    "hellinger": (lambda v: 1 - np.exp(-v), lambda t: t / (1 - t)),
    "js": (lambda v: np.log(2) - np.log1p(np.exp(-v)), lambda t: -np.log(2 - np.exp(t))),
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_f_gan_losses_are_the_negated_variational_bound(name):
    activation, conjugate = TEXTBOOK[name]
    fake, real = D_FAKE.astype(np.float64), D_REAL.astype(np.float64)
    bound = np.mean(activation(real)) - np.mean(conjugate(activation(fake)))
    pair = losses.adversarial_loss(f"f_{name}")
    assert float(pair.discriminator(D_FAKE, D_REAL)) == pytest.approx(-bound, rel=1e-5, abs=1e-6)
    assert float(pair.generator(D_FAKE)) == pytest.approx(-np.mean(activation(fake)), rel=1e-5, abs=1e-6)


def test_f_gan_losses_stay_finite_where_the_textbook_form_does_not():
    big = np.array([30.0, -30.0], np.float32)
    for name in TEXTBOOK:
        if name == "kl":  # exp(v - 1) itself is the loss: finite in float32 up to v ~ 89
            continue
        assert np.isfinite(float(losses.adversarial_loss(f"f_{name}").discriminator(big, big))), name


def test_each_adversarial_loss_trains_alae_with_finite_values(tiny_config, tiny_images):
    """Each loss is the step's (other numbers than softplus's) and 5 steps stay finite. The energy
    losses, with their own D, are trained in tests/test_energy_losses.py."""
    from alae_tf.config import ADVERSARIAL_LOSSES, ENERGY_LOSSES
    from training_data import batches_for

    names = [name for name in ADVERSARIAL_LOSSES if name not in ENERGY_LOSSES]
    reported = {}
    for name in names:
        keras.utils.set_random_seed(0)
        tiny_config.train.adversarial_loss = name
        model = build_alae(tiny_config)
        history = model.fit(batches_for(tiny_config, model, tiny_images), steps_per_epoch=5, epochs=1, verbose=0)
        reported[name] = {key: values[-1] for key, values in history.history.items()}
        assert all(np.isfinite(weight.numpy()).all() for weight in model.weights), name
        assert all(np.isfinite(value) for value in reported[name].values()) and reported[name]["nonfinite"] == 0, name
    for name in names[1:]:
        assert reported[name]["loss_d"] != pytest.approx(reported["softplus"]["loss_d"], rel=1e-3), name


def test_wasserstein_and_the_gradient_norm_penalty_by_hand():
    pair = losses.adversarial_loss("wasserstein")
    assert float(pair.discriminator(D_FAKE, D_REAL)) == pytest.approx(0.5 - (-2 / 3), rel=1e-6)
    assert float(pair.generator(D_FAKE)) == pytest.approx(-0.5, rel=1e-6)
    grads = np.zeros((2, 2, 2, 1), np.float32)
    grads[0, 0, 0, 0], grads[0, 1, 1, 0] = 3.0, 4.0  # norm 5: (5 - 1)^2 = 16
    grads[1, 0, 1, 0] = 1.0  # norm 1: 0
    assert float(losses.gradient_norm_penalty(grads, weight=10.0)) == pytest.approx(10.0 * (16 + 0) / 2, rel=1e-6)
