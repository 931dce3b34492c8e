"""EBGAN's and BEGAN's energy losses in ALAE: D is an autoencoder on w, its score the
reconstruction error (alae_tf.losses, alae_tf.nets.discriminator.EnergyDiscriminator)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf import losses
from alae_tf.config import ConfigError
from alae_tf.model import build_alae
from alae_tf.nets.discriminator import EnergyDiscriminator
from alae_tf.run_dir import model_checkpoint
from replica_state import assert_same_training_state, training_state
from training_data import SaveAfter, batches_for

E_FAKE = np.array([0.5, 2.0, 3.0], np.float32)
E_REAL = np.array([0.25, 1.0, 0.0], np.float32)


def test_ebgan_and_began_losses_by_hand():
    ebgan = losses.adversarial_loss("ebgan", energy_margin=2.0)
    # mean(real) = 1.25 / 3; [2 - fake]^+ = 1.5, 0, 0
    assert float(ebgan.discriminator(E_FAKE, E_REAL)) == pytest.approx(1.25 / 3 + 1.5 / 3, rel=1e-6)
    assert float(ebgan.generator(E_FAKE)) == pytest.approx(5.5 / 3, rel=1e-6)
    k = tf.Variable(0.25)
    began = losses.adversarial_loss("began", began_k=k)
    assert float(began.discriminator(E_FAKE, E_REAL)) == pytest.approx(1.25 / 3 - 0.25 * 5.5 / 3, rel=1e-6)
    k.assign(0.5)  # the loss reads k when it is computed
    assert float(began.discriminator(E_FAKE, E_REAL)) == pytest.approx(1.25 / 3 - 0.5 * 5.5 / 3, rel=1e-6)
    assert float(began.generator(E_FAKE)) == pytest.approx(5.5 / 3, rel=1e-6)


def test_began_k_update_and_convergence_measure_by_hand():
    # 0.5 + 0.1 (0.5 * 1.0 - 0.2) = 0.53; then clipped to [0, 1] at both ends
    assert float(losses.began_next_k(0.5, 1.0, 0.2, gamma=0.5, lambda_k=0.1)) == pytest.approx(0.53, rel=1e-6)
    assert float(losses.began_next_k(0.99, 1.0, 0.0, gamma=0.5, lambda_k=1.0)) == 1.0
    assert float(losses.began_next_k(0.01, 0.0, 1.0, gamma=0.5, lambda_k=1.0)) == 0.0
    # M_global = 1.0 + |0.5 * 1.0 - 0.2|
    assert float(losses.began_convergence(1.0, 0.2, gamma=0.5)) == pytest.approx(1.3, rel=1e-6)


def test_pullaway_term_by_hand():
    codes = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
    # cosines of the pairs: (1, 2) 0, (1, 3) and (2, 3) 1/sqrt(2): squared 0, 1/2, 1/2, each pair
    # counted twice over N (N - 1) = 6 ordered pairs
    assert float(losses.pullaway_term(codes)) == pytest.approx(2 * (0 + 0.5 + 0.5) / 6, rel=1e-6)
    assert float(losses.pullaway_term(np.array([[1.0, 0.0], [0.0, 3.0]], np.float32))) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("error", ["norm", "absolute"])
def test_the_energy_is_the_reconstruction_error_of_the_autoencoder(error):
    """With the decoder's last layer reduced to its bias b, the reconstruction is b for every w: the
    energy is ||b - w|| or mean |b - w| per row, computed here by numpy."""
    d = EnergyDiscriminator(latent_dim=4, hidden_dim=8, layers=3, code_dim=2, lr_mul=0.1, error=error)
    w = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    d(w)
    last = d.decode.layers[-1]
    b = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    last.kernel.assign(np.zeros_like(last.kernel.numpy()))
    last.bias.assign(b / last.lr_mul)  # EqualizedDense adds bias * lr_mul
    expected = np.linalg.norm(b - w, axis=1) if error == "norm" else np.mean(np.abs(b - w), axis=1)
    np.testing.assert_allclose(d(w).numpy(), expected, rtol=1e-6)
    energy, code = d.energy_and_code(w)
    assert energy.shape == (5,) and code.shape == (5, 2)


def energy_config(config, loss, **train):
    config.train.adversarial_loss = loss
    for key, value in train.items():
        setattr(config.train, key, value)
    config.validate("test")
    return config


def test_an_energy_loss_gives_alae_an_autoencoder_discriminator(tiny_config):
    keras.utils.set_random_seed(0)
    model = build_alae(energy_config(tiny_config, "ebgan"))
    assert isinstance(model.discriminator, EnergyDiscriminator) and model.discriminator.error == "norm"
    assert model.discriminator.encode.output_shape == (None, tiny_config.model.latent_dim // 2)
    tiny_config.model.disc_code_dim = 5
    model = build_alae(energy_config(tiny_config, "began"))
    assert model.discriminator.error == "absolute" and model.discriminator.encode.output_shape == (None, 5)
    tiny_config.train.adversarial_loss = "softplus"
    assert not isinstance(build_alae(tiny_config).discriminator, EnergyDiscriminator)


@pytest.mark.parametrize("changes, message", [
    ({"model": {"kind": "aae"}, "train": {"adversarial_loss": "ebgan"}}, "is ALAE's"),
    ({"train": {"adversarial_loss": "softplus", "pullaway_weight": 0.1}}, "needs train.adversarial_loss: ebgan"),
    ({"model": {"kind": "vae"}, "train": {"pullaway_weight": 0.1}}, "the vae baseline needs .* pullaway_weight: 0"),
    ({"train": {"adversarial_loss": "ebgan", "energy_margin": 0.0}}, "energy_margin must be > 0"),
    ({"train": {"adversarial_loss": "ebgan", "pullaway_weight": -1.0}}, "pullaway_weight must be >= 0"),
    ({"train": {"adversarial_loss": "began", "began_gamma": 1.5}}, r"began_gamma must lie in \(0, 1\]"),
    ({"train": {"adversarial_loss": "began", "began_lambda_k": -0.1}}, r"began_lambda_k must lie in \[0, 1\]"),
    ({"model": {"disc_code_dim": 0}}, "disc_code_dim must lie in"),
])
def test_energy_settings_are_checked(changes, message):
    from alae_tf.config import Config

    raw = Config().to_dict()
    if changes.get("model", {}).get("kind"):  # a baseline: without ALAE's settings
        raw["train"].update(ema_nets=[], gradient_penalty="none")
    for section, values in changes.items():
        raw[section].update(values)
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(raw, "test")


def fit(model, config, images, steps, start_step=0, callbacks=None):
    model.fit(batches_for(config, model, images, start_step=start_step), steps_per_epoch=steps, epochs=1, verbose=0,
              callbacks=callbacks)
    return model


def build(config, strategy=None):
    keras.utils.set_random_seed(0)
    with (strategy or tf.distribute.get_strategy()).scope():
        return build_alae(config)


def test_began_moves_k_by_its_rule_and_logs_it(tiny_config, tiny_images):
    """One step from k = 0.5: the logged k is the rule applied to the step's energies, read back
    from the logged convergence measure (M = L_real + |gamma L_real - L_fake|, with the generator
    step's L_fake = loss_g)."""
    energy_config(tiny_config, "began", began_gamma=0.7, began_lambda_k=0.05)
    model = build(tiny_config)
    model.began_k.assign(0.5)
    batch = next(iter(batches_for(tiny_config, model, tiny_images)))
    logs = {key: float(value) for key, value in model.train_step(batch).items()}
    assert {"began_k", "convergence"} <= set(logs)
    fake = logs["loss_g"]
    # L_real from M: try both signs of gamma L_real - L_fake and keep the consistent one
    candidates = [(logs["convergence"] + fake) / (1 + 0.7), (logs["convergence"] - fake) / (1 - 0.7)]
    real = [r for r in candidates if np.isclose(r + abs(0.7 * r - fake), logs["convergence"], rtol=1e-5)][0]
    assert logs["began_k"] == pytest.approx(np.clip(0.5 + 0.05 * (0.7 * real - fake), 0, 1), rel=1e-5)
    assert float(model.began_k.numpy()) == pytest.approx(logs["began_k"], rel=1e-6) and logs["began_k"] != 0.5


@pytest.mark.parametrize("loss, extra", [("ebgan", {"pullaway_weight": 0.1}), ("began", {})])
def test_two_replicas_equal_one_replica(loss, extra, tiny_config, tiny_images, mirrored):
    """BEGAN's k and EBGAN's pulling-away term use the whole batch's energies and codes, whatever
    the number of replicas sharing it."""
    energy_config(tiny_config, loss, **extra)
    one = fit(build(tiny_config), tiny_config, tiny_images, 3)
    two = fit(build(tiny_config, mirrored), tiny_config, tiny_images, 3)
    assert all(np.isfinite(weight.numpy()).all() for weight in one.weights)  # the traced step stays finite
    assert_same_training_state(training_state(one), training_state(two))
    if loss == "began":
        assert float(one.began_k.numpy()) == pytest.approx(float(two.began_k.numpy()), abs=1e-7)


def two_eager_steps(config, images):
    model = build(config)
    batches = iter(batches_for(config, model, images))
    for _ in range(2):
        model.train_step(next(batches))
    return model


def test_the_pullaway_term_changes_the_generator_update(tiny_config, tiny_images):
    without = two_eager_steps(energy_config(tiny_config, "ebgan"), tiny_images)
    with_pt = two_eager_steps(energy_config(tiny_config, "ebgan", pullaway_weight=1.0), tiny_images)
    assert not np.allclose(without.generator.weights[0].numpy(), with_pt.generator.weights[0].numpy())


def test_began_resumes_exactly_with_its_k(tiny_config, tiny_images, tmp_path):
    """4 steps in one go (checkpointed after its 2nd) == 2 steps, that checkpoint, a new model restored
    from it, 2 more steps; k included (started at 0.5 so that it moves)."""
    energy_config(tiny_config, "began", began_gamma=1.0, began_lambda_k=0.1)
    straight = build(tiny_config)
    straight.began_k.assign(0.5)
    saved = SaveAfter(2, str(tmp_path / "ckpt"))
    fit(straight, tiny_config, tiny_images, 4, callbacks=[saved])
    keras.utils.set_random_seed(1)
    resumed = build_alae(tiny_config)
    model_checkpoint(resumed).restore(saved.path).assert_existing_objects_matched()  # k is among the weights compared below
    fit(resumed, tiny_config, tiny_images, 2, start_step=2)
    assert float(straight.began_k.numpy()) not in (0.0, 0.5, 1.0)
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_stylealae_trains_with_an_energy_discriminator_and_its_ema_copy(tiny_images):
    """tiny_style keeps EMA copies of all four nets: D's copy is an autoencoder too."""
    from alae_tf.config import load_preset

    config = energy_config(load_preset("tiny_style"), "began")
    model = build(config)
    assert isinstance(model.discriminator_ema, EnergyDiscriminator)
    before = [w.numpy().copy() for w in model.discriminator_ema.weights]
    history = model.fit(batches_for(config, model, tiny_images), steps_per_epoch=3, epochs=1, verbose=0).history
    assert all(np.isfinite(values[-1]) for values in history.values()) and history["nonfinite"][-1] == 0
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, model.discriminator_ema.weights))
