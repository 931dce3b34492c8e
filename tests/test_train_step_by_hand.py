"""The ALAE train step recomputed by hand: what each update computes (its fakes, losses,
gradients and running means), checked against the networks called directly with the formulas of
the paper (and of EBGAN-PT), not through the step's own helpers.

Every batch here is built by hand (a dict of the `alae_tf.batch` keys), so the step's random draws
(latents, style-mixing latents and crossover points, blend, noise seed) are known to the test. The
nets compute in float32; the comparisons are made in float64 with tolerances a few hundred times
float32's rounding (~6e-8 relative) of the quantities compared, far below what each guarded bug
changes (asserted where it is not obvious).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf import model as model_module
from alae_tf import schedule
from alae_tf.batch import BLEND, DISCRIMINATOR, GENERATOR, IMAGES, NOISE_SEED, RECIPROCITY, UPDATES
from alae_tf.config import load_preset
from alae_tf.inference import Sampler, draw_noise
from alae_tf.model import build_alae

BATCH = 8


def hand_batch(latent_dim, image_shape, *, num_styles=1, crossovers=None, blend=1.0, noise_seed=7, seed=0):
    """A training batch with every draw made here: reals uniform in [-1, 1], standard normal
    latents, `crossovers` [BATCH] for both mixing updates (default: `num_styles`, no mixing)."""
    rng = np.random.default_rng(seed)
    batch = {IMAGES: tf.constant(rng.uniform(-1, 1, (BATCH, *image_shape)), tf.float32)}
    crossovers = np.full(BATCH, num_styles) if crossovers is None else np.asarray(crossovers)
    for update in UPDATES:
        batch[update.z] = tf.constant(rng.standard_normal((BATCH, latent_dim)), tf.float32)
        if update.z_mix is not None:
            batch[update.z_mix] = tf.constant(rng.standard_normal((BATCH, latent_dim)), tf.float32)
            batch[update.crossover] = tf.constant(crossovers, tf.int32)
    batch[BLEND] = tf.fill([BATCH], tf.constant(blend, tf.float32))
    batch[NOISE_SEED] = tf.fill([BATCH], tf.constant(noise_seed, tf.int64))
    return batch


def f64(tensor):
    return np.asarray(tensor, np.float64)


def capture_gradients(monkeypatch):
    """Replace the step's hand-over to the optimizers: record (optimizer, grads, variables) and
    apply nothing, so the weights stay those the test differentiates by hand."""
    given = []
    monkeypatch.setattr(model_module, "apply_existing_gradients",
                        lambda optimizer, grads, variables: given.append((optimizer, grads, variables)))
    return given


# --- StyleALAE: style mixing, fade-in, styles in use ---------------------------------------------


@pytest.fixture(scope="module")
def style():
    """tiny_style grown to 16x16 (3 levels, 6 style inputs), so a middle level is tested too."""
    config = load_preset("tiny_style")
    config.model.image_shape = [16, 16, 3]
    config.train.level_batch_sizes = [BATCH] * 3
    config.train.level_learning_rates = [0.002] * 3
    config.train.style_mixing_prob = 1.0
    config.validate("test")
    keras.utils.set_random_seed(0)
    return config, build_alae(config)


def at_level(config, model, level):
    model.enter_phase(schedule.phases(config)[level])
    assert model.level == level


def test_style_mixing_puts_f_of_the_mixing_latent_from_the_crossover_point_on(style):
    """Steps I and II mix styles: style input i gets F(z) before the row's crossover point and
    F(z_mix) from it on. Guards mixing silently off in training (the step's `if` never taken) and
    the crossover off by one (`>` for `>=`: the point's own input kept from z). Both only showed in
    the slow end-to-end quality test."""
    config, model = style
    at_level(config, model, 2)
    num_styles = model.generator.num_styles
    assert num_styles == 6 and model.style_mixing
    crossovers = [1, 2, 3, 4, 5, num_styles, 1, 5]  # num_styles: this row does not mix
    batch = hand_batch(config.model.latent_dim, (16, 16, 3), num_styles=num_styles, crossovers=crossovers)
    for update in (DISCRIMINATOR, GENERATOR):
        fakes, w = model._fakes(batch, update)
        w_own = model.mapping(batch[update.z]).numpy()
        w_mix = model.mapping(batch[update.z_mix]).numpy()
        styles = np.stack([[w_mix[b] if i >= crossovers[b] else w_own[b] for i in range(num_styles)]
                           for b in range(BATCH)])
        noise = draw_noise(model.generator.noise_shapes(2), BATCH, batch[NOISE_SEED][0], update.noise_stream)
        expected = model.generator(tf.constant(styles), level=2, blend=1.0, noise=noise)
        np.testing.assert_allclose(f64(w), f64(w_own), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f64(fakes), f64(expected), rtol=1e-5, atol=1e-5, err_msg=str(update))
        unmixed = f64(model.generator(tf.constant(w_own), level=2, blend=1.0, noise=noise))
        change = np.abs(f64(fakes) - unmixed).reshape(BATCH, -1).max(axis=1)
        assert change[crossovers.index(num_styles)] < 1e-5  # the row that does not mix
        assert all(change[b] > 1e-3 for b in range(BATCH) if crossovers[b] < num_styles), change


def test_a_level_fading_in_trains_at_the_batchs_blend(style):
    """At a level fading in, the step's G and E run at the batch's blend (0.3 here): its fakes are
    G(F(z), blend 0.3), its encodings E(x, blend 0.3) and step III's loss ||E(G(F(z))) - F(z)||^2 at
    that blend. Guards the blend ignored in training (1.0 used: the new level trained fully in from
    its first step while the samples and the reals faded it in)."""
    config, model = style
    at_level(config, model, 1)
    batch = hand_batch(config.model.latent_dim, (8, 8, 3), num_styles=model.generator.num_styles, blend=0.3)
    noise = draw_noise(model.generator.noise_shapes(1), BATCH, batch[NOISE_SEED][0], RECIPROCITY.noise_stream)
    w = model.mapping(batch[RECIPROCITY.z])

    def fakes_at(blend):
        return f64(model.generator(w, level=1, blend=blend, noise=noise))

    def encodings_at(images, blend):
        return f64(model.encoder(images, level=1, blend=blend))

    fakes = f64(model._fakes(batch, RECIPROCITY)[0])
    np.testing.assert_allclose(fakes, fakes_at(0.3), rtol=1e-5, atol=1e-5)
    assert np.abs(fakes - fakes_at(1.0)).max() > 1e-2
    reals = batch[IMAGES]
    np.testing.assert_allclose(f64(model._encode(reals, batch)), encodings_at(reals, 0.3), rtol=1e-5, atol=1e-5)
    assert np.abs(encodings_at(reals, 0.3) - encodings_at(reals, 1.0)).max() > 1e-2

    expected_lae = np.mean((encodings_at(tf.constant(fakes_at(0.3), tf.float32), 0.3) - f64(w)) ** 2)
    other_lae = np.mean((encodings_at(tf.constant(fakes_at(1.0), tf.float32), 1.0) - f64(w)) ** 2)
    with pytest.MonkeyPatch.context() as patch:
        capture_gradients(patch)  # the module's model keeps its weights
        loss_lae = float(model._reciprocity_step(batch, 1))
    assert loss_lae == pytest.approx(expected_lae, rel=1e-4)
    assert abs(other_lae - expected_lae) > 1e-2 * expected_lae


def test_penalty_scores_without_a_batch_are_those_of_the_level_fully_in(style):
    """scores_and_input_gradients(images) offers its batch as optional, but above the first level
    it read the batch's blend from None (a TypeError): without one, E runs with the level fully in."""
    config, model = style
    at_level(config, model, 1)
    images = tf.constant(np.random.default_rng(4).uniform(-1, 1, (BATCH, 8, 8, 3)), tf.float32)
    scores, grads = model.scores_and_input_gradients(images)
    expected = f64(model.discriminator(model.encoder(images, level=1, blend=1.0)))
    np.testing.assert_allclose(f64(scores), expected, rtol=1e-5, atol=1e-5)
    full_batch = {BLEND: tf.ones([BATCH])}
    np.testing.assert_allclose(f64(grads), f64(model.scores_and_input_gradients(images, full_batch)[1]), rtol=1e-5, atol=1e-6)


def test_styles_in_use_are_the_style_inputs_that_change_the_image(style):
    """Sampler.styles_in_use at each level is the number of style inputs G reads there, found
    here by changing one input at a time: 2 per level up to this one. Guards `styles_per_level *
    level` (0 at 4x4: the editing tools and the studio offered no style input of the coarsest
    level, and at the others one level too few)."""
    config, model = style
    rng = np.random.default_rng(1)
    styles = rng.standard_normal((2, model.generator.num_styles, config.model.latent_dim)).astype(np.float32)
    for level in range(model.generator.levels):
        sampler = Sampler.from_model(model, level=level)
        base = sampler.decode(styles).numpy()
        read = []
        for i in range(model.generator.num_styles):
            changed = styles.copy()
            changed[:, i] = rng.standard_normal((2, config.model.latent_dim))
            difference = np.abs(sampler.decode(changed).numpy() - base).max()
            assert difference == 0 or difference > 1e-4, (level, i, difference)  # read or not at all
            if difference > 0:
                read.append(i)
        assert read == list(range(2 * (level + 1))), (level, read)
        assert sampler.styles_in_use == len(read), (level, sampler.styles_in_use, read)


# --- the MLP backbone: step II's running mean, EBGAN-PT, the losses' gradients -------------------


def mlp_model(config, **train):
    for key, value in train.items():
        setattr(config.train, key, value)
    config.validate("test")
    keras.utils.set_random_seed(0)
    return build_alae(config)


def test_step_two_moves_w_avg_by_its_running_mean(tiny_config):
    """Step II moves F's running mean of w (the truncation centre) to beta w_avg + (1 - beta)
    mean F(z) over the z it draws, with F as it was before the step's update. From w_avg = 0 the
    first step leaves (1 - beta) mean F(z); the second follows the recurrence. beta = 0.8 (not 0.5,
    where the inverted lerp coincides). Guards the lerp inverted, in the step's beta or in
    update_w_avg (w_avg tracking the latest batch: truncated samples centred on noise)."""
    beta = 0.8
    model = mlp_model(tiny_config, w_avg_beta=beta)
    latent = tiny_config.model.latent_dim
    np.testing.assert_array_equal(model.mapping.w_avg.numpy(), np.zeros(latent))
    expected = np.zeros(latent)
    for step in range(2):
        batch = hand_batch(latent, (8, 8, 1), seed=step)
        w = f64(model.mapping(batch[GENERATOR.z]))
        model._generator_step(batch, 1)
        expected = beta * expected + (1 - beta) * w.mean(axis=0)
        np.testing.assert_allclose(f64(model.mapping.w_avg.numpy()), expected, rtol=1e-5, atol=1e-7)
        assert np.abs(expected).max() > 1e-2  # a mean far from 0: the mutants' values are far off
        assert not np.allclose(f64(model.mapping(batch[GENERATOR.z])), w)  # the update moved F after w was taken


def test_ebgan_pullaway_term_adds_to_the_generator_loss(tiny_config):
    """EBGAN-PT's generator loss: mean energy D(E(G(F(z)))) + weight x the pulling-away term of D's
    codes of the fakes (mean squared cosine of distinct pairs), both written out here with numpy.
    Guards the term subtracted (G pushed to collapse D's codes onto one direction: the opposite
    of what the term is for)."""
    weight = 0.5
    model = mlp_model(tiny_config, adversarial_loss="ebgan", pullaway_weight=weight)
    batch = hand_batch(tiny_config.model.latent_dim, (8, 8, 1))
    fakes = model.generator(model.mapping(batch[GENERATOR.z]))
    energy, code = (f64(t) for t in model.discriminator.energy_and_code(model.encoder(fakes)))
    unit = code / np.linalg.norm(code, axis=1, keepdims=True)
    cosines = unit @ unit.T
    pullaway = (np.sum(cosines**2) - np.sum(np.diag(cosines) ** 2)) / (BATCH * (BATCH - 1))
    expected = energy.mean() + weight * pullaway
    # The sign of the term moves the loss by 2 x weight x term, hundreds of times the tolerance
    # (float32 sums of 8 energies and a 3-wide code: ~1e-7 relative).
    assert 2 * weight * pullaway > 100 * 1e-5 * expected
    assert float(model._generator_step(batch, 1)) == pytest.approx(expected, rel=1e-5)


def test_steps_one_and_two_hand_the_optimizers_the_papers_gradients(tiny_config, monkeypatch):
    """The gradients steps I and II give their optimizers are those of the paper's losses, written
    out here and differentiated by a tape of the test:
      step I (E, D):  mean softplus(D(E(G(F(z))))) + mean softplus(-D(E(x))) + gamma / 2 mean ||grad_x D(E(x))||^2
      step II (F, G): mean softplus(-D(E(G(F(z)))))
    Guards reals and fakes swapped in D's loss, the R1 penalty subtracted, and G trained on -D(E(fake))
    (each trains the nets toward the opposite game; only the slow quality test noticed)."""
    model = mlp_model(tiny_config)
    gamma = model.r1_gamma
    assert gamma > 0
    batch = hand_batch(tiny_config.model.latent_dim, (8, 8, 1))
    reals = batch[IMAGES]
    given = capture_gradients(monkeypatch)

    def score(images):
        return model.discriminator(model.encoder(images))

    # Step I, by hand: its three terms' gradients apart, so that each is seen to count.
    ed_vars = model.encoder.trainable_variables + model.discriminator.trainable_variables
    fakes_d = model.generator(model.mapping(batch[DISCRIMINATOR.z]))
    with tf.GradientTape(persistent=True) as tape:
        with tf.GradientTape() as inner:
            inner.watch(reals)
            d_real = score(reals)
            total = tf.reduce_sum(d_real)  # the images are independent: per-image input gradients
        real_grads = inner.gradient(total, reals)
        d_fake = score(fakes_d)
        terms = {
            "fake": tf.reduce_mean(tf.nn.softplus(d_fake)),
            "real": tf.reduce_mean(tf.nn.softplus(-d_real)),
            "r1": gamma / 2 * tf.reduce_mean(tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3])),
        }
    # (R1 does not reach D's biases: D is linear, its input gradient does not depend on them.)
    parts = {name: [np.zeros(v.shape) if g is None else f64(g) for g, v in zip(tape.gradient(term, ed_vars), ed_vars)]
             for name, term in terms.items()}
    expected_d = [parts["fake"][k] + parts["real"][k] + parts["r1"][k] for k in range(len(ed_vars))]

    loss_d, r1, _ = model._discriminator_step(batch, 1)
    assert float(loss_d) == pytest.approx(float(terms["fake"] + terms["real"]), rel=1e-5)
    assert float(r1) == pytest.approx(float(terms["r1"]), rel=1e-4)
    (optimizer, grads, variables), = given
    assert optimizer is model.optimizer_ed and [v.path for v in variables] == [v.path for v in ed_vars]
    # Both sides are float32 computations of the same sums in another order (the largest over 64
    # pixels x 16 units): rounding ~1e-6 of the largest gradient; 1e-4 of it leaves a wide margin.
    scale = max(np.abs(g).max() for g in expected_d)
    tolerance = 1e-4 * scale
    # Each term moves the gradient far more than the tolerance (so each mutant is seen):
    for name, grad in parts.items():
        assert max(np.abs(g).max() for g in grad) > 100 * tolerance, name
    assert max(np.abs(a - b).max() for a, b in zip(parts["fake"], parts["real"])) > 100 * tolerance
    for variable, got, want in zip(variables, grads, expected_d):
        np.testing.assert_allclose(f64(got), want, rtol=1e-4, atol=tolerance, err_msg=variable.path)

    # Step II, by hand (no update was applied: the same weights).
    given.clear()
    fg_vars = model.mapping.trainable_variables + model.generator.trainable_variables
    with tf.GradientTape() as tape:
        d_fake_g = score(model.generator(model.mapping(batch[GENERATOR.z])))
        loss_g = tf.reduce_mean(tf.nn.softplus(-d_fake_g))
    expected_g = [f64(g) for g in tape.gradient(loss_g, fg_vars)]
    assert float(model._generator_step(batch, 1)) == pytest.approx(float(loss_g), rel=1e-5)
    (optimizer, grads, variables), = given
    assert optimizer is model.optimizer_fg and [v.path for v in variables] == [v.path for v in fg_vars]
    scale = max(np.abs(g).max() for g in expected_g)
    for variable, got, want in zip(variables, grads, expected_g):
        np.testing.assert_allclose(f64(got), want, rtol=1e-4, atol=1e-4 * scale, err_msg=variable.path)
