"""The ALAE keras.Model: composes F, G, E, D and trains them with the paper's three updates. It
builds on TrainedModel, what every model kind (ALAE, the baselines) gives the trainer.

One trainer for every backbone: the nets answer the calls of `alae_tf.nets.protocol`, and a
batch (`alae_tf.batch`) carries the real images and every random draw of its step (latents,
style-mixing latents and crossover points, the fade-in blend, the noise seed), so a step is a
pure function of (weights, batch): the result does not depend on how many replicas share the
batch, and a resumed run draws exactly what an uninterrupted one would.

The trainer moves the model through the schedule with `enter_phase` (level, learning rate,
EMA decay, optimizer reset); each level traces its own train step. Which nets have an EMA copy
is data (`train.ema_nets`); sampling goes through `alae_tf.inference.Sampler`.
"""

import keras
import tensorflow as tf

from alae_tf import losses, multiworker
from alae_tf.adam import FusedAdam
from alae_tf.batch import BLEND, DISCRIMINATOR, GENERATOR, IMAGES, NOISE_SEED, PENALTY_STREAM, RECIPROCITY
from alae_tf.config import NETS
from alae_tf.inference import Sampler, draw_noise
from alae_tf.layers import use_scales
from alae_tf.nets import Networks, build_networks
from alae_tf.schedule import phases

# A key of the train step's logs: 1 when a loss or a trained weight of the step is NaN or
# infinite (a mean over replicas under a strategy: any value above 0 means diverged).
NONFINITE = "nonfinite"


def ema_decay(batch_size, half_life_images):
    """Per-step EMA decay whose weight halves every `half_life_images` images."""
    return 0.5 ** (batch_size / half_life_images)


class TrainedModel(keras.Model):
    """What the trainer, callbacks, checkpoints, evaluation and export need of every model kind
    (ALAE and the baselines of `alae_tf.baselines`): the checkpointed step counter, one Mean
    tracker per logged loss, `checkpointed_optimizers()`, `sampling_networks()` and `enter_phase()`,
    and the logs every train step returns (with `NONFINITE`)."""

    def __init__(self, loss_names, **kwargs):
        super().__init__(**kwargs)
        self.trained_steps = self.add_weight(
            name="trained_steps", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in loss_names}
        self.phase = None  # the schedule phase being trained, set by enter_phase

    @property
    def step(self) -> int:
        """Training steps taken: the one step counter (checkpointed; fixes the data position)."""
        return int(self.trained_steps.numpy())

    @property
    def metrics(self):
        return list(self.trackers.values())

    def reset_metrics(self):
        """Keras resets the trackers as every epoch begins; here `callbacks.LogWindows` resets them
        after each log row instead, so that a row is the mean over the steps since the one before
        (an epoch boundary made rows means over the epoch so far, restarted mid-window)."""

    def reset_trackers(self):
        for tracker in self.trackers.values():
            tracker.reset_state()

    def checkpointed_optimizers(self) -> dict:
        """{checkpoint key: optimizer} of every optimizer the model trains with."""
        raise NotImplementedError

    def enter_phase(self, phase):
        """Train `phase` (an `alae_tf.schedule.Phase`) from the current step on; a model kind adds
        what the phase sets for it (learning rate, level, ...)."""
        self.phase = phase

    def call(self, images, training=False):
        """Reconstruction G(E(x)) with the sampling nets at the current level, no noise."""
        return Sampler.from_model(self, level=self.level).reconstruct(images)

    def finish_step(self, step_losses: dict, variables):
        """Count the step, track its losses and return the logs: the tracked means and `NONFINITE`
        (any loss or any of `variables` NaN or infinite)."""
        self.trained_steps.assign_add(1)
        for name, value in step_losses.items():
            self.trackers[name].update_state(value)
        finite = _all_finite(tuple(step_losses.values()) + tuple(variables))
        logs = {**{name: tracker.result() for name, tracker in self.trackers.items()},
                NONFINITE: 1.0 - tf.cast(finite, tf.float32)}
        if multiworker.is_multiworker(tf.distribute.get_strategy()):
            # Keras reduces each returned value with strategy.reduce("MEAN", value, axis=0) under
            # MultiWorkerMirroredStrategy, which refuses scalars; a [1] value comes back a scalar.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Skip Keras's symbolic build before `fit`: every weight and optimizer slot exists already
        (`build_all`, `compile`), and under MultiWorkerMirroredStrategy the build fails (it reduces
        the first batch with strategy.reduce(axis=None)). Overrides a private Keras method, checked
        on Keras 3.15 by tests/test_multiworker.py."""


class ALAE(TrainedModel):
    def __init__(self, networks: Networks, ema_networks: dict, *, r1_gamma=10.0, adversarial_loss="softplus",
                 gradient_penalty="r1", gp_weight=10.0, weight_clip=0.0, energy_margin=1.0, pullaway_weight=0.0,
                 began_gamma=0.5, began_lambda_k=0.001, ema_half_life_images=10000.0, w_avg_beta=0.995,
                 style_mixing=False, **kwargs):
        """`ema_networks`: {net name: its EMA copy} for the nets the EMA covers. With
        `adversarial_loss` ebgan or began, D is an `EnergyDiscriminator`; BEGAN's equilibrium
        variable k is a checkpointed weight of the model, logged with its convergence measure."""
        began = adversarial_loss == "began"
        super().__init__(("loss_d", "r1", "loss_g", "loss_lae") + (("began_k", "convergence") if began else ()),
                         **kwargs)
        self.began = began
        self.mapping = networks.mapping
        self.generator = networks.generator
        self.encoder = networks.encoder
        self.discriminator = networks.discriminator
        # One attribute per EMA net (tf.train.Checkpoint tracks attributes, not Keras-tracked dicts).
        self.ema_names = tuple(name for name in NETS if name in ema_networks)
        for name in self.ema_names:
            ema_networks[name].trainable = False
            setattr(self, f"{name}_ema", ema_networks[name])
        self.r1_gamma = r1_gamma
        if self.began:
            self.began_k = self.add_weight(name="began_k", shape=(), initializer="zeros", trainable=False,
                                           aggregation="only_first_replica")
        self.began_gamma, self.began_lambda_k = began_gamma, began_lambda_k
        self.adversarial = losses.adversarial_loss(adversarial_loss, energy_margin=energy_margin,
                                                   began_k=self.began_k if self.began else None)
        self.pullaway_weight = pullaway_weight
        self.gradient_penalty, self.gp_weight, self.weight_clip = gradient_penalty, gp_weight, weight_clip
        self.ema_half_life_images = ema_half_life_images
        self.w_avg_beta = w_avg_beta
        self.style_mixing = style_mixing and self.generator.num_styles > 1
        self.level, self.ema_beta = None, None  # set by enter_phase

    def networks(self) -> Networks:
        return Networks(self.mapping, self.generator, self.encoder, self.discriminator)

    def sampling_networks(self, use_ema=True) -> Networks:
        """Each net's EMA copy where the run keeps one (and `use_ema`), else the live net."""
        live = self.networks().by_name()
        chosen = {name: getattr(self, f"{name}_ema") if use_ema and name in self.ema_names else net
                  for name, net in live.items()}
        return Networks(**chosen)

    def build_all(self, latent_dim):
        """Create every weight (all levels of the nets and their EMA copies), then copy the live nets into the EMA nets."""
        z = tf.zeros((1, latent_dim))
        for nets in (self.networks(), self.sampling_networks()):
            # A pass at a level builds every block up to it; with a fade-in also the RGB layers of the
            # level below: every other level from the top builds all (a 6-level run: 12 blocks' passes
            # instead of 21, the most of loading one).
            for level in range(nets.generator.levels - 1, -1, -2):
                blend = 1.0 if level > 0 else None
                images = nets.generator(nets.mapping(z), level=level, blend=blend)
                nets.discriminator(nets.encoder(images, level=level, blend=blend))
        self.built = True
        for ema_var, var, _ in self._ema_pairs():
            ema_var.assign(var)

    def compile(self, optimizer_ed, optimizer_fg, **kwargs):
        """`optimizer_ed` trains E and D, `optimizer_fg` trains F and G (the reference's two Adams)."""
        super().compile(optimizer=None, **kwargs)
        self.optimizer_ed = optimizer_ed
        self.optimizer_fg = optimizer_fg
        # Built here, inside the strategy scope: lazy building inside a distributed step fails.
        optimizer_ed.build(self._ed_variables())
        optimizer_fg.build(self._fg_variables())

    def checkpointed_optimizers(self) -> dict:
        return {"optimizer_ed": self.optimizer_ed, "optimizer_fg": self.optimizer_fg}

    def enter_phase(self, phase):
        """Train `phase` (an `alae_tf.schedule.Phase`) from the current step on: its level, learning
        rate and EMA decay. A level after the first, entered at its first step, starts with fresh
        optimizer state, as in the reference."""
        super().enter_phase(phase)
        ema_beta = ema_decay(phase.batch_size, self.ema_half_life_images)
        if (phase.level, ema_beta) != (self.level, self.ema_beta):
            self.train_function = None  # both are Python values of the traced step: trace it anew
        self.level, self.ema_beta = phase.level, ema_beta
        if phase.level > 0 and self.step == phase.first_step:
            _reset_optimizer_state(self.optimizer_ed)
            _reset_optimizer_state(self.optimizer_fg)
        self.optimizer_ed.learning_rate = phase.learning_rate
        self.optimizer_fg.learning_rate = phase.learning_rate

    # --- training --------------------------------------------------------------------------

    def train_step(self, data):
        # Losses are means over this replica's share of the batch; dividing by the replica
        # count makes the summed (all-reduced) gradients those of the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss_d, r1, d_real_mean = self._discriminator_step(data, replicas)
        loss_g = self._generator_step(data, replicas)
        loss_lae = self._reciprocity_step(data, replicas)
        self._update_ema()
        step_losses = {"loss_d": loss_d, "r1": r1, "loss_g": loss_g, "loss_lae": loss_lae}
        if self.began:  # BEGAN's generator loss is the fakes' mean energy, L(G(z_G))
            step_losses.update(self._update_began_k(real_energy=d_real_mean, fake_energy=loss_g))
        return self.finish_step(step_losses, self._ed_variables() + self._fg_variables())

    def _blend(self, data):
        """The batch's fade-in blend at a level above the first; None (the level fully in) without a batch."""
        return data[BLEND][0] if self.level > 0 and data is not None else None

    def _encode(self, images, data):
        return self.encoder(images, level=self.level, blend=self._blend(data), training=True)

    def _d_of_e(self, images, data):
        return tf.cast(self.discriminator(self._encode(images, data), training=True), tf.float32)

    def _fakes(self, data, update):
        """(G(F(z)), F(z)) for one update (`alae_tf.batch.Update`), with its noise and, when the
        model mixes styles and the update does, styles from F(z_mix) from the crossover point on."""
        w = self.mapping(data[update.z], training=True)
        styles = w  # G puts a [B, latent] w on every style input
        if self.style_mixing and update.z_mix is not None:
            num_styles = self.generator.num_styles
            w_mix = self.mapping(data[update.z_mix], training=True)
            take_mix = tf.range(num_styles)[tf.newaxis, :] >= data[update.crossover][:, tf.newaxis]
            styles = tf.where(take_mix[:, :, tf.newaxis], _repeat(w_mix, num_styles), _repeat(w, num_styles))
        noise = draw_noise(self.generator.noise_shapes(self.level), tf.shape(w)[0], data[NOISE_SEED][0], update.noise_stream)
        return self.generator(styles, level=self.level, blend=self._blend(data), noise=noise, training=True), w

    def scores_and_input_gradients(self, images, data=None):
        """D(E(images)) and its per-image input gradient, differentiable again (for the gradient
        penalties: R1 at the reals, R2 at the fakes, WGAN-GP and DRAGAN at their points). `data`:
        the batch, whose blend E uses while a level fades in (None: the level fully in)."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = self._d_of_e(images, data)
            total = tf.reduce_sum(scores)  # images are independent: per-image gradients
        return scores, tape.gradient(total, images)

    def _discriminator_step(self, data, replicas):
        """Step I: E and D on the adversarial loss (the paper's: softplus(D(E(fake))) + softplus(-D(E(real))))
        + the gradient penalty (the paper's: R1 on the reals). Returns (loss, penalty, mean D(E(real)))."""
        fakes = tf.stop_gradient(self._fakes(data, DISCRIMINATOR)[0])
        variables = self._ed_variables()
        with tf.GradientTape() as tape:
            d_real, d_fake, penalty = self._scores_and_penalty(data[IMAGES], fakes, data)
            loss_d = self.adversarial.discriminator(d_fake, d_real)
            # Under float16 the optimizer scales the loss up (and its gradients back down).
            scaled = self.optimizer_ed.scale_loss((loss_d + penalty) / replicas)
        apply_existing_gradients(self.optimizer_ed, tape.gradient(scaled, variables), variables)
        if self.weight_clip > 0:  # WGAN's clip, on the weights as E and D use them (stored x runtime scale)
            scales = use_scales(self.encoder) | use_scales(self.discriminator)
            for variable in variables:
                bound = self.weight_clip / scales.get(variable.path, 1.0)
                variable.assign(tf.clip_by_value(variable, -bound, bound))
        return loss_d, penalty, tf.reduce_mean(d_real)

    def _scores_and_penalty(self, reals, fakes, data):
        """(D(E(reals)), D(E(fakes)), step I's gradient penalty), with one pass of E and D per batch
        where the penalty's points are the reals (R1) or the fakes (R2)."""
        if self.gradient_penalty == "r1":
            d_real, grads = self.scores_and_input_gradients(reals, data)
            return d_real, self._d_of_e(fakes, data), losses.r1_penalty(tf.cast(grads, tf.float32), self.r1_gamma)
        if self.gradient_penalty == "r2":
            d_fake, grads = self.scores_and_input_gradients(fakes, data)
            return self._d_of_e(reals, data), d_fake, losses.r1_penalty(tf.cast(grads, tf.float32), self.r1_gamma)
        d_real, d_fake = self._d_of_e(reals, data), self._d_of_e(fakes, data)
        if self.gradient_penalty == "none":
            return d_real, d_fake, tf.constant(0.0)
        batch, seed = tf.shape(reals)[0], data[NOISE_SEED][0]
        if self.gradient_penalty == "wgan_gp":  # uniform points on the segments between reals and fakes
            alpha = draw_noise([(1, 1, 1)], batch, seed, PENALTY_STREAM, tf.random.stateless_uniform)[0]
            points = reals + tf.cast(alpha, reals.dtype) * (tf.cast(fakes, reals.dtype) - reals)
        else:  # dragan, as its reference implementation: uniform points on the segments from the reals to
            # reals + 0.5 std U[0, 1) per pixel, with each image's own std (the reference's batch std
            # would depend on how the batch is split)
            alpha, noise = draw_noise([(1, 1, 1), reals.shape[1:]], batch, seed, PENALTY_STREAM, tf.random.stateless_uniform)
            spread = tf.math.reduce_std(reals, axis=[1, 2, 3], keepdims=True)
            points = reals + tf.cast(alpha, reals.dtype) * 0.5 * spread * tf.cast(noise, reals.dtype)
        _, grads = self.scores_and_input_gradients(tf.stop_gradient(points), data)
        return d_real, d_fake, losses.gradient_norm_penalty(tf.cast(grads, tf.float32), self.gp_weight)

    def _generator_step(self, data, replicas):
        """Step II: F and G on the adversarial generator loss (the paper's: softplus(-D(E(G(F(z)))))); E and D
        are not updated. F's w_avg follows F(z). EBGAN-PT adds its pulling-away term on D's codes of
        the fakes, taken over the whole batch (gathered from every replica)."""
        variables = self._fg_variables()
        with tf.GradientTape() as tape:
            fakes, w = self._fakes(data, GENERATOR)
            if self.pullaway_weight > 0:
                energy, code = self.discriminator.energy_and_code(self._encode(fakes, data))
                codes = tf.distribute.get_replica_context().all_gather(tf.cast(code, tf.float32), axis=0)
                loss_g = self.adversarial.generator(energy) + self.pullaway_weight * losses.pullaway_term(codes)
            else:
                loss_g = self.adversarial.generator(self._d_of_e(fakes, data))
            scaled = self.optimizer_fg.scale_loss(loss_g / replicas)
        apply_existing_gradients(self.optimizer_fg, tape.gradient(scaled, variables), variables)
        self.mapping.update_w_avg(w, self.w_avg_beta)
        return loss_g

    def _reciprocity_step(self, data, replicas):
        """Step III: ||F(z) - E(G(F(z)))||^2 updates E, G and F (through G's input); not D."""
        e_vars = self.encoder.trainable_variables
        fg_vars = self._fg_variables()
        with tf.GradientTape() as tape:
            fakes, w = self._fakes(data, RECIPROCITY)
            w_rec = self._encode(fakes, data)
            loss_lae = losses.latent_reciprocity_loss(tf.cast(w, tf.float32), tf.cast(w_rec, tf.float32))
            # One backward pass for both optimizers, at the smaller of their loss scales (fp16; 1
            # otherwise): at E's, when G's had dropped below it, G's fp16 gradients overflowed and
            # F/G skipped the step and halved their scale again. Each share is then rescaled to
            # its optimizer's scale in float32.
            ed_scale, fg_scale = self.optimizer_ed.scale_loss(1.0), self.optimizer_fg.scale_loss(1.0)
            scale = 1.0 if isinstance(ed_scale, float) else tf.minimum(ed_scale, fg_scale)  # floats: no loss scale
            scaled = loss_lae / replicas * scale
        grads = tape.gradient(scaled, e_vars + fg_vars)
        e_grads, fg_grads = grads[: len(e_vars)], grads[len(e_vars) :]
        if not isinstance(scale, float):
            e_grads = [None if g is None else g * tf.cast(ed_scale / scale, g.dtype) for g in e_grads]
            fg_grads = [None if g is None else g * tf.cast(fg_scale / scale, g.dtype) for g in fg_grads]
        apply_existing_gradients(self.optimizer_ed, e_grads, e_vars)
        apply_existing_gradients(self.optimizer_fg, fg_grads, fg_vars)
        return loss_lae

    def _update_began_k(self, real_energy, fake_energy):
        """BEGAN's k update from the step's mean energies over the whole batch (every replica's
        share); returns the logged k (after the update) and convergence measure."""
        context = tf.distribute.get_replica_context()
        real_energy, fake_energy = (context.all_reduce("mean", value) for value in (real_energy, fake_energy))
        self.began_k.assign(losses.began_next_k(self.began_k, real_energy, fake_energy,
                                                self.began_gamma, self.began_lambda_k))
        return {"began_k": tf.identity(self.began_k), "convergence": losses.began_convergence(
            real_energy, fake_energy, self.began_gamma)}

    def _ed_variables(self):
        return self.encoder.trainable_variables + self.discriminator.trainable_variables

    def _fg_variables(self):
        return self.mapping.trainable_variables + self.generator.trainable_variables

    def _ema_pairs(self):
        """(EMA variable, live variable, averaged?) for every weight of the EMA'd nets: trainable
        weights are averaged, the others (F's w_avg) copied, as stylegan2-ada copies buffers."""
        pairs = []
        for name in self.ema_names:
            live, ema = getattr(self, name), getattr(self, f"{name}_ema")
            pairs += [(e, v, v.trainable) for e, v in zip(ema.weights, live.weights)]
        return pairs

    def _update_ema(self):
        beta = self.ema_beta

        def update(strategy):
            for ema_var, var, averaged in self._ema_pairs():
                function = (lambda e, v: e.assign(v + beta * (e - v))) if averaged else (lambda e, v: e.assign(v))
                # Mirrored variables may only be written per device from the cross-replica context.
                strategy.extended.update(ema_var.value, function, args=(var.value,))

        context = tf.distribute.get_replica_context()
        if context is None:
            update(tf.distribute.get_strategy())
        else:
            context.merge_call(update)


def _all_finite(tensors):
    """No NaN or infinity in any of `tensors`, in the graph: one pass over the 3.8M weights of the
    MNIST MLP costs 2-4 ms on 2 CPU cores, a few percent of its ~100 ms step."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(tensor)) for tensor in tensors])


def _repeat(w, num_styles):
    return tf.repeat(w[:, tf.newaxis, :], num_styles, axis=1)


def apply_existing_gradients(optimizer, grads, variables):
    """Apply the gradients that exist: at a low level, the higher levels' weights get none."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    optimizer.apply_gradients(pairs)


def _reset_optimizer_state(optimizer):
    """Zero Adam's moments and step count (the loss scale of a float16 optimizer is kept)."""
    adam = getattr(optimizer, "inner_optimizer", optimizer)
    for variable in adam._momentums + adam._velocities:
        variable.assign(tf.zeros_like(variable))
    adam.iterations.assign(0)


def make_adam(config_train):
    """The reference's Adam: beta1 = 0, beta2 = 0.99, eps = 1e-8 (TensorFlow's fused kernel,
    `alae_tf.adam`); with dynamic loss scaling under float16.
    The learning rate is set per phase (`ALAE.enter_phase`)."""
    optimizer = FusedAdam(
        learning_rate=config_train.learning_rate,
        beta_1=config_train.adam_beta1,
        beta_2=config_train.adam_beta2,
        epsilon=config_train.adam_epsilon,
    )
    if config_train.mixed_precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_alae(config) -> ALAE:
    """Build and compile the ALAE of a resolved Config, at its first phase; call inside the strategy scope."""
    m, t = config.model, config.train
    energy_error = losses.ENERGY_ERRORS.get(t.adversarial_loss)
    ema_networks = build_networks(m, t.truncation_cutoff, name_suffix="_ema", energy_error=energy_error).by_name()
    model = ALAE(
        build_networks(m, t.truncation_cutoff, energy_error=energy_error),
        {name: ema_networks[name] for name in t.ema_nets},
        r1_gamma=t.r1_gamma,
        adversarial_loss=t.adversarial_loss,
        gradient_penalty=t.gradient_penalty,
        gp_weight=t.gp_weight,
        weight_clip=t.weight_clip,
        energy_margin=t.energy_margin,
        pullaway_weight=t.pullaway_weight,
        began_gamma=t.began_gamma,
        began_lambda_k=t.began_lambda_k,
        ema_half_life_images=t.ema_half_life_images,
        w_avg_beta=t.w_avg_beta,
        style_mixing=t.style_mixing_prob > 0,
        name="alae",
    )
    model.build_all(m.latent_dim)
    model.compile(make_adam(t), make_adam(t), jit_compile=t.jit)
    model.enter_phase(phases(config)[0])
    return model
