import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.batch import DISCRIMINATOR, PENALTY_STREAM
from alae_tf.inference import draw_noise
from alae_tf.model import build_alae, ema_decay
from replica_state import assert_same_training_state, training_state
from training_data import batches_for, tiny_mlp_config, tiny_mlp_images


def snapshot(model):
    nets = {
        "F": model.mapping, "G": model.generator, "E": model.encoder, "D": model.discriminator,
        "F_ema": model.mapping_ema, "G_ema": model.generator_ema,
    }
    return {name: [v.numpy().copy() for v in net.weights] for name, net in nets.items()}


def moved(before, after):
    return {name for name in before if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}


@pytest.fixture
def model_and_batch(tiny_config, tiny_images):
    keras.utils.set_random_seed(0)
    model = build_alae(tiny_config)
    batch = next(iter(batches_for(tiny_config, model, tiny_images)))
    return model, batch


def test_step_one_moves_only_encoder_and_discriminator(model_and_batch):
    model, batch = model_and_batch
    before = snapshot(model)
    model._discriminator_step(batch, replicas=1)
    assert moved(before, snapshot(model)) == {"E", "D"}


def test_step_two_moves_only_mapping_and_generator(model_and_batch):
    model, batch = model_and_batch
    before = snapshot(model)
    model._generator_step(batch, replicas=1)
    assert moved(before, snapshot(model)) == {"F", "G"}


def test_step_three_moves_encoder_generator_and_mapping_not_discriminator(model_and_batch):
    model, batch = model_and_batch
    before = snapshot(model)
    model._reciprocity_step(batch, replicas=1)
    assert moved(before, snapshot(model)) == {"E", "G", "F"}


def test_train_step_updates_ema_by_its_half_life(model_and_batch, tiny_config):
    model, batch = model_and_batch
    before = snapshot(model)
    model.train_step(batch)
    after = snapshot(model)
    beta = ema_decay(8, 20.0)
    assert beta == pytest.approx(0.5 ** (8 / 20))
    for name, live in (("F", model.mapping), ("G", model.generator)):
        for variable, ema_old, live_new, ema_new in zip(live.weights, before[name + "_ema"], after[name], after[name + "_ema"]):
            if variable.trainable:
                np.testing.assert_allclose(ema_new, beta * ema_old + (1 - beta) * live_new, rtol=1e-5, atol=1e-7)
            else:  # F's running mean of w is copied, as the reference keeps one dlatent_avg
                np.testing.assert_array_equal(ema_new, live_new)
    assert np.abs(model.mapping_ema.w_avg.numpy()).max() > 0  # step II moved it off zero
    assert int(model.trained_steps.numpy()) == 1


def test_ema_starts_as_a_copy_of_the_live_networks(model_and_batch):
    model, _ = model_and_batch
    weights = snapshot(model)
    for live, ema in (("F", "F_ema"), ("G", "G_ema")):
        for a, b in zip(weights[live], weights[ema]):
            np.testing.assert_array_equal(a, b)
    assert not model.mapping_ema.trainable_variables and not model.generator_ema.trainable_variables


def test_reported_losses_are_the_losses_of_the_batch(model_and_batch):
    model, batch = model_and_batch
    logs = model.train_step(batch)
    assert set(logs) == {"loss_d", "r1", "loss_g", "loss_lae", "nonfinite"}
    assert all(np.isfinite(float(v)) for v in logs.values()) and float(logs["nonfinite"]) == 0
    assert float(logs["r1"]) > 0 and float(logs["loss_d"]) > 0


def run_fit(config, images, strategy, steps=2):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_alae(config)
    batches = batches_for(config, model, images)
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return training_state(model)


@pytest.fixture(scope="module")
def one_replica_r1():
    """run_fit of tiny_mlp_config (R1, the default penalty) on one replica."""
    return run_fit(tiny_mlp_config(), tiny_mlp_images(), tf.distribute.get_strategy())


def test_two_replicas_equal_one_replica(one_replica_r1, tiny_config, tiny_images, mirrored):
    one = one_replica_r1
    assert mirrored.num_replicas_in_sync == 2
    two = run_fit(tiny_config, tiny_images, mirrored)
    keras.utils.set_random_seed(0)
    initial = [v.numpy() for v in build_alae(tiny_config).weights]
    assert any(not np.allclose(a, b) for a, b in zip(initial, one["weights"]))  # training did move the weights
    assert_same_training_state(one, two)


# r2 is slow only: its penalty differs from R1's only in taking the gradients at the fakes, whose
# value test_the_gradient_penalties_by_hand checks, and the wgan_gp case (between reals and fakes)
# runs the fakes' per-replica path under two replicas.
@pytest.mark.parametrize("penalty", [pytest.param("r2", marks=pytest.mark.slow), "wgan_gp", "dragan"])
def test_two_replicas_equal_one_replica_for_every_gradient_penalty(penalty, one_replica_r1, tiny_config, tiny_images,
                                                                   mirrored):
    """The penalties' random points come from the step's seed, sliced per replica (an upstream Keras
    bug once broke second-order gradients under MirroredStrategy: facts section 1)."""
    tiny_config.train.gradient_penalty = penalty
    one = run_fit(tiny_config, tiny_images, tf.distribute.get_strategy())
    two = run_fit(tiny_config, tiny_images, mirrored)
    assert_same_training_state(one, two)
    # the penalty is in effect: not R1's weights
    assert any(not np.allclose(a, b) for a, b in zip(one["weights"], one_replica_r1["weights"]))


def test_the_gradient_penalties_by_hand(model_and_batch):
    """Each penalty equals its formula at its points, with D(E(.)) differentiated by the tape."""
    model, batch = model_and_batch
    reals, fakes = batch["images"], tf.stop_gradient(model._fakes(batch, DISCRIMINATOR)[0])

    def grad_at(points):
        return model.scores_and_input_gradients(points, batch)[1].numpy()

    def norms(grads):
        return np.sqrt((grads.astype(np.float64) ** 2).reshape(len(grads), -1).sum(axis=1))

    expected = {
        "r1": 0.5 * model.r1_gamma * np.mean(norms(grad_at(reals)) ** 2),
        "r2": 0.5 * model.r1_gamma * np.mean(norms(grad_at(fakes)) ** 2),
        "none": 0.0,
    }
    for penalty, value in expected.items():
        model.gradient_penalty = penalty
        assert float(model._scores_and_penalty(reals, fakes, batch)[2]) == pytest.approx(value, rel=1e-4), penalty
    # WGAN-GP at the real-fake interpolates whose weights the step's seed draws.
    alpha = draw_noise([(1, 1, 1)], reals.shape[0], batch["noise_seed"][0], PENALTY_STREAM, tf.random.stateless_uniform)[0]
    model.gradient_penalty = "wgan_gp"
    expected_gp = model.gp_weight * np.mean((norms(grad_at(reals + alpha * (fakes - reals))) - 1) ** 2)
    assert float(model._scores_and_penalty(reals, fakes, batch)[2]) == pytest.approx(expected_gp, rel=1e-4)
    # DRAGAN, as its reference code (kodalinaveen3/DRAGAN): on the segments from the reals to the
    # reals perturbed by 0.5 std U[0, 1) per pixel (each image's std). It took the perturbed points
    # themselves, twice as far from the data on average.
    alpha, noise = (x.numpy() for x in draw_noise([(1, 1, 1), reals.shape[1:]], reals.shape[0], batch["noise_seed"][0],
                                                 PENALTY_STREAM, tf.random.stateless_uniform))
    pixels = reals.numpy()
    spread = pixels.reshape(len(pixels), -1).std(axis=1)[:, None, None, None]
    model.gradient_penalty = "dragan"
    expected_dragan = model.gp_weight * np.mean((norms(grad_at(tf.constant(pixels + alpha * 0.5 * spread * noise))) - 1) ** 2)
    assert float(model._scores_and_penalty(reals, fakes, batch)[2]) == pytest.approx(expected_dragan, rel=1e-4)
    model.gradient_penalty = "r1"


def test_weight_clipping_bounds_the_weights_e_and_d_use_after_step_one(tiny_config, tiny_images):
    """WGAN's clip acts on the weights as the nets use them (stored x the equalized learning rate's
    runtime scale, gain / sqrt(fan_in)). On the stored weights, 0.01 left G a gradient of ~1e-16."""
    from alae_tf.layers import use_scales

    tiny_config.train.adversarial_loss, tiny_config.train.gradient_penalty = "wasserstein", "none"
    tiny_config.train.weight_clip = 0.05
    keras.utils.set_random_seed(0)
    model = build_alae(tiny_config)
    batch = next(iter(batches_for(tiny_config, model, tiny_images)))
    model._discriminator_step(batch, replicas=1)  # step III moves E again, unclipped
    scales = use_scales(model.encoder) | use_scales(model.discriminator)
    clipped = model.encoder.trainable_variables + model.discriminator.trainable_variables
    kernels = [v for v in clipped if v.path.endswith("kernel")]
    assert kernels and all(v.path in scales for v in kernels)
    assert all(np.abs(v.numpy() * scales.get(v.path, 1.0)).max() <= 0.05 * (1 + 1e-6) for v in clipped)
    assert max(np.abs(v.numpy()).max() for v in kernels) > 0.05  # stored: above the clip, used: within it
    assert max(np.abs(v.numpy()).max() for v in model.generator.trainable_variables) > 0.05


def test_xla_step_matches_the_plain_step(one_replica_r1, tiny_config, tiny_images):
    tiny_config.train.jit = True
    jitted = run_fit(tiny_config, tiny_images, tf.distribute.get_strategy())
    assert_same_training_state(one_replica_r1, jitted, rtol=1e-4, atol=1e-5, optimizer_rtol=1e-3)


def test_bf16_step_keeps_float32_weights_and_tracks_float32(one_replica_r1, tiny_config, tiny_images):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    weights = run_fit(tiny_config, tiny_images, tf.distribute.get_strategy())["weights"]
    assert all(w.dtype in (np.float32, np.int64) for w in weights)
    assert all(np.all(np.isfinite(w)) for w in weights)
    reference = one_replica_r1["weights"]  # the same config, seed, images and steps in float32
    # bf16 has ~3 significant digits: close to the float32 run, but not equal to it.
    differences = [np.max(np.abs(a - b)) for a, b in zip(weights, reference) if a.dtype == np.float32]
    assert 0 < max(differences) < 0.1


@pytest.fixture(scope="module")
def fp16_run():
    """(model, history, batches) of tiny_mlp_config built and fitted 5 steps with --mixed-precision
    fp16. A module fixture is set up before conftest's per-test policy reset: it sets the float16
    policy and puts float32 back itself."""
    from alae_tf.compute import set_precision

    config = tiny_mlp_config()
    config.train.mixed_precision = "fp16"
    set_precision("fp16")
    try:
        keras.utils.set_random_seed(0)
        model = build_alae(config)
        batches = batches_for(config, model, tiny_mlp_images())
        history = model.fit(batches, steps_per_epoch=5, epochs=1, verbose=0).history
    finally:
        set_precision("none")
    return model, history, batches


def test_fp16_sets_the_float16_policy_and_scales_the_losses(fp16_run):
    """--mixed-precision fp16: float16 compute, float32 weights, dynamically loss-scaled Adams."""
    from alae_tf.compute import set_precision

    set_precision("fp16")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    set_precision("none")
    model, history, _ = fp16_run
    assert isinstance(model.optimizer_ed, keras.optimizers.LossScaleOptimizer)
    assert model.generator.layers[0].compute_dtype == "float16"
    assert all(np.isfinite(values[-1]) for values in history.values())
    assert all(w.dtype in ("float32", "int64") for w in model.weights if "loss_scale" not in w.path)


def test_fp16_reciprocity_backward_runs_at_the_smaller_loss_scale(fp16_run, monkeypatch):
    """Step III's one backward pass ran at E's loss scale: once F/G's scale had dropped below it,
    G's float16 gradients overflowed and F/G skipped the step (and halved their scale again)."""
    from alae_tf import model as model_module
    from alae_tf.compute import set_precision

    model, _, batches = fp16_run  # fitted: its optimizers are built
    set_precision("fp16")
    try:
        model.optimizer_ed.dynamic_scale.assign(2.0**24)  # far past float16's range for any gradient
        model.optimizer_fg.dynamic_scale.assign(1.0)
        given = {}
        monkeypatch.setattr(model_module, "apply_existing_gradients",
                            lambda optimizer, grads, variables: given.setdefault(optimizer.name, grads))
        model._reciprocity_step(next(iter(batches)), 1)
    finally:
        set_precision("none")
    e_grads, fg_grads = given[model.optimizer_ed.name], given[model.optimizer_fg.name]
    assert all(np.isfinite(g.numpy()).all() for g in e_grads + fg_grads if g is not None)
    # E's share at its own scale: 2^24 times F/G's scale-1 gradients' magnitude, not overflowed
    assert max(float(tf.reduce_max(tf.abs(g))) for g in e_grads if g is not None) > 1e3


def test_the_official_mlp_preset_computes_the_mnist_ref_networks():
    """mnist_ref (Z_GAN.py, experiment_mnist_fc.yaml): its MappingFromLatent skips its layers (F is
    the identity); GeneratorFC's hidden layers and EncoderFC's output call F.leaky_relu at its
    default slope 0.01 (EncoderFC's hidden layers at 0.2). Recomputed here with numpy from the
    layers' weights, where the slopes decide the result."""
    from alae_tf.config import load_preset

    config = load_preset("mnist_official")
    config.model.hidden_dim = 32
    model = build_alae(config)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 50)).astype(np.float32)
    np.testing.assert_array_equal(model.mapping(z).numpy(), z)

    def dense(layer, x):
        return x @ layer.kernel.numpy() * layer.runtime_scale + layer.bias.numpy() * layer.lr_mul

    def leaky(x, slope):
        return np.where(x > 0, x, slope * x)

    g = [layer for layer in model.generator.body.layers if hasattr(layer, "runtime_scale")]
    image = dense(g[2], leaky(dense(g[1], leaky(dense(g[0], z), 0.01)), 0.01)).reshape(4, 28, 28, 1)
    np.testing.assert_allclose(model.generator(z).numpy(), image, rtol=1e-4, atol=1e-5)
    x = rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    e = [layer for layer in model.encoder.body.layers if hasattr(layer, "runtime_scale")]
    w = leaky(dense(e[2], leaky(dense(e[1], leaky(dense(e[0], x.reshape(4, -1)), 0.2)), 0.2)), 0.01)
    np.testing.assert_allclose(model.encoder(x).numpy(), w, rtol=1e-4, atol=1e-5)
