"""The ALAE keras.Model: composes F, G, E, D and trains them with the paper's three updates.

Every batch from `alae_tf.data` carries the real images and the random draws of its step
(latents `z_d`, `z_g`, `z_ae`; for StyleALAE also the style-mixing latents and crossover
points, the fade-in `blend` and the noise seed), so a step is a pure function of (weights,
batch): the result does not depend on how many replicas share the batch, and a resumed run
draws exactly what an uninterrupted one would.

The MLP and the Style backbone share this one trainer. A progressive (Style) generator and
encoder also take the current `level` (a Python int: each level has its own traced step)
and `blend`; for them the EMA covers all four networks, as in the reference, and F's running
average w feeds truncation.
"""

import keras
import tensorflow as tf

from alae_tf import losses
from alae_tf.nets import Networks, build_networks

NOISE_STREAMS = {"d": 1, "g": 2, "ae": 3, "sample": 4}  # one noise stream per step of the train step


def ema_decay(batch_size, half_life_images):
    """Per-step EMA decay whose weight halves every `half_life_images` images."""
    return 0.5 ** (batch_size / half_life_images)


class ALAE(keras.Model):
    def __init__(self, networks: Networks, ema_networks: Networks, *, r1_gamma=10.0, ema_beta=0.99,
                 progressive=False, w_avg_beta=0.995, truncation_cutoff=8, **kwargs):
        super().__init__(**kwargs)
        self.mapping = networks.mapping
        self.generator = networks.generator
        self.encoder = networks.encoder
        self.discriminator = networks.discriminator
        # Sampling and export use the EMA copies: F and G (MLP) or all four nets (Style, as the reference).
        self.progressive = progressive
        self.mapping_ema = ema_networks.mapping
        self.generator_ema = ema_networks.generator
        self.encoder_ema = ema_networks.encoder if progressive else None
        self.discriminator_ema = ema_networks.discriminator if progressive else None
        for net in self._ema_nets():
            net.trainable = False
        self.r1_gamma = r1_gamma
        self.ema_beta = ema_beta
        self.w_avg_beta = w_avg_beta
        self.truncation_cutoff = truncation_cutoff
        self.level = self.generator.levels - 1 if progressive else None  # set by the trainer per level
        self.trained_steps = self.add_weight(
            name="trained_steps", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss_d", "r1", "loss_g", "loss_lae")
        }

    def build_all(self, image_shape, latent_dim):
        """Create every weight (nets, EMA copies, w average) and copy the live nets into the EMA nets."""
        images = tf.zeros((1, *image_shape))
        z = tf.zeros((1, latent_dim))
        self.w_avg = self.add_weight(name="w_avg", shape=(latent_dim,), initializer="zeros", trainable=False,
                                     aggregation="mean")
        for mapping, generator, encoder, discriminator in (
            (self.mapping, self.generator, self.encoder, self.discriminator),
            (self.mapping_ema, self.generator_ema, self.encoder_ema or self.encoder,
             self.discriminator_ema or self.discriminator),
        ):
            discriminator(encoder(generator(mapping(z))))
            if self.progressive:  # every level's fade-in path, so all weights exist before the optimizers
                for level in range(1, self.generator.levels):
                    encoder(generator(mapping(z), level=level, blend=1.0), level=level, blend=1.0)
        self(images)
        for ema_var, var in zip(self._ema_variables(), self._ema_sources()):
            ema_var.assign(var)

    def compile(self, optimizer_ed, optimizer_fg, **kwargs):
        """`optimizer_ed` trains E and D, `optimizer_fg` trains F and G (the reference's two Adams)."""
        super().compile(optimizer=None, **kwargs)
        self.optimizer_ed = optimizer_ed
        self.optimizer_fg = optimizer_fg
        # Built here, inside the strategy scope: lazy building inside a distributed step fails.
        optimizer_ed.build(self._ed_variables())
        optimizer_fg.build(self._fg_variables())

    def set_level(self, level):
        """Train (and sample) at `level` from now on; the next `fit` traces a new train step."""
        if level != self.level:
            self.level = level
            self.train_function = None

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- inference -------------------------------------------------------------------------

    def call(self, images, training=False):
        """Reconstruction G_ema(E(x)) (E_ema for Style), images in [-1, 1] at the current level."""
        return self.decode(self.encode(images, training=training), training=training)

    def encode(self, images, training=False):
        """w = E(x): the EMA encoder for Style (its EMA covers all nets), the live one for the MLP."""
        if not self.progressive:
            return self.encoder(images, training=training)
        return self.encoder_ema(images, level=self.level, training=training)

    def decode(self, w, noise_seed=0, training=False):
        """G_ema(w) for w [B, latent], no truncation; Style: w on every style input, seeded noise."""
        if not self.progressive:
            return self.generator_ema(w, training=training)
        noise = self.noise(tf.shape(w)[0], NOISE_STREAMS["sample"], noise_seed)
        return self.generator_ema(w, level=self.level, noise=noise, training=training)

    def generate(self, z, use_ema=True, truncation_psi=1.0, noise_seed=0):
        """Images from latents z; Style: truncation toward the average w on the first style inputs."""
        mapping, generator = (self.mapping_ema, self.generator_ema) if use_ema else (self.mapping, self.generator)
        w = mapping(z)
        if not self.progressive:
            return generator(w)
        styles = self.truncate(self.broadcast(w), truncation_psi)
        noise = self.noise(tf.shape(z)[0], NOISE_STREAMS["sample"], noise_seed)
        return generator(styles, level=self.level, noise=noise)

    def broadcast(self, w):
        """w [B, D] -> one copy per style input [B, S, D]."""
        return tf.repeat(w[:, tf.newaxis, :], self.generator.num_styles, axis=1)

    def truncate(self, styles, psi):
        """w_avg + psi * (w - w_avg) on the first `truncation_cutoff` style inputs."""
        cutoff = tf.range(self.generator.num_styles)[tf.newaxis, :, tf.newaxis] < self.truncation_cutoff
        psi = tf.where(cutoff, tf.cast(psi, styles.dtype), tf.ones([], styles.dtype))
        w_avg = tf.cast(self.w_avg, styles.dtype)
        return w_avg + psi * (styles - w_avg)

    def noise(self, batch, stream, seed):
        """Per-pixel noise images for every noise input up to the current level.

        Each replica draws the noise of the whole global batch and keeps its own slice, so the
        noise of image i does not depend on how the batch is split across replicas."""
        context = tf.distribute.get_replica_context()
        replicas, replica = (1, 0) if context is None else (context.num_replicas_in_sync, context.replica_id_in_sync_group)
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])
        images = []
        for index, shape in enumerate(self.generator.noise_shapes(self.level)):
            full = tf.random.stateless_normal([batch * replicas, *shape], seed=seed + tf.constant([0, 100 * index], tf.int64))
            images.append(full[batch * replica : batch * (replica + 1)])
        return images

    # --- training --------------------------------------------------------------------------

    def train_step(self, data):
        images = data["images"]
        # Losses are means over this replica's share of the batch; dividing by the replica
        # count makes the summed (all-reduced) gradients those of the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss_d, r1 = self._discriminator_step(data, replicas)
        loss_g = self._generator_step(data, replicas)
        loss_lae = self._reciprocity_step(data, replicas)
        self._update_ema()
        self.trained_steps.assign_add(1)
        for name, value in (("loss_d", loss_d), ("r1", r1), ("loss_g", loss_g), ("loss_lae", loss_lae)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _blend(self, data):
        return data["blend"][0] if self.progressive and self.level > 0 else None

    def _encode(self, images, data):
        if not self.progressive:
            return self.encoder(images, training=True)
        return self.encoder(images, level=self.level, blend=self._blend(data), training=True)

    def _d_of_e(self, images, data):
        return tf.cast(self.discriminator(self._encode(images, data), training=True), tf.float32)

    def _fakes(self, data, key, mix):
        """(G(F(z)), F(z)) for step `key` ("d", "g" or "ae"); Style: with noise and, if `mix`,
        style mixing: styles from F(z_mix) from the step's crossover point on."""
        w = self.mapping(data[f"z_{key}"], training=True)
        if not self.progressive:
            return self.generator(w, training=True), w
        styles = self.broadcast(w)
        if mix:
            w_mix = self.mapping(data[f"z_{key}_mix"], training=True)
            crossover = data[f"crossover_{key}"]
            take_mix = tf.range(self.generator.num_styles)[tf.newaxis, :] >= crossover[:, tf.newaxis]
            styles = tf.where(take_mix[:, :, tf.newaxis], self.broadcast(w_mix), styles)
        noise = self.noise(tf.shape(w)[0], NOISE_STREAMS[key], data["noise_seed"][0])
        return self.generator(styles, level=self.level, blend=self._blend(data), noise=noise, training=True), w

    def real_logits_and_gradients(self, images, data=None):
        """D(E(x)) and its per-image input gradient, differentiable again (for R1)."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            d_real = self._d_of_e(images, data)
            d_real_sum = tf.reduce_sum(d_real)  # images are independent: per-image gradients
        return d_real, tape.gradient(d_real_sum, images)

    def _discriminator_step(self, data, replicas):
        """Step I: E and D on softplus(D(E(fake))) + softplus(-D(E(real))) + R1 on the reals."""
        fakes = tf.stop_gradient(self._fakes(data, "d", mix=self.progressive)[0])
        variables = self._ed_variables()
        with tf.GradientTape() as tape:
            d_real, real_grads = self.real_logits_and_gradients(data["images"], data)
            r1 = losses.r1_penalty(tf.cast(real_grads, tf.float32), self.r1_gamma)
            loss_d = losses.discriminator_loss(self._d_of_e(fakes, data), d_real)
            # Under float16 the optimizer scales the loss up (and its gradients back down).
            scaled = self.optimizer_ed.scale_loss((loss_d + r1) / replicas)
        _apply(self.optimizer_ed, tape.gradient(scaled, variables), variables)
        return loss_d, r1

    def _generator_step(self, data, replicas):
        """Step II: F and G on softplus(-D(E(G(F(z))))); E and D are not updated."""
        variables = self._fg_variables()
        with tf.GradientTape() as tape:
            fakes, w = self._fakes(data, "g", mix=self.progressive)
            loss_g = losses.generator_loss(self._d_of_e(fakes, data))
            scaled = self.optimizer_fg.scale_loss(loss_g / replicas)
        _apply(self.optimizer_fg, tape.gradient(scaled, variables), variables)
        if self.progressive:
            self._update_w_avg(w)
        return loss_g

    def _reciprocity_step(self, data, replicas):
        """Step III: ||F(z) - E(G(F(z)))||^2 updates E, G and F (through G's input); not D."""
        e_vars = self.encoder.trainable_variables
        fg_vars = self._fg_variables()
        with tf.GradientTape() as tape:
            fakes, w = self._fakes(data, "ae", mix=False)
            w_rec = self._encode(fakes, data)
            loss_lae = losses.latent_reciprocity_loss(tf.cast(w, tf.float32), tf.cast(w_rec, tf.float32))
            scaled = self.optimizer_ed.scale_loss(loss_lae / replicas)
        grads = tape.gradient(scaled, e_vars + fg_vars)
        # One backward pass at E's loss scale; F and G's share is rescaled to their optimizer's.
        fg_rescale = self.optimizer_fg.scale_loss(1.0) / self.optimizer_ed.scale_loss(1.0)
        fg_grads = [None if g is None else g * tf.cast(fg_rescale, g.dtype) for g in grads[len(e_vars) :]]
        _apply(self.optimizer_ed, grads[: len(e_vars)], e_vars)
        _apply(self.optimizer_fg, fg_grads, fg_vars)
        return loss_lae

    def _update_w_avg(self, w):
        """w_avg <- lerp(mean over the global batch of F(z), w_avg, beta) (the reference's dlatent_avg)."""
        batch_mean = tf.reduce_mean(tf.cast(w, tf.float32), axis=0)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            batch_mean = context.all_reduce("mean", batch_mean)
        self.w_avg.assign(batch_mean + self.w_avg_beta * (self.w_avg - batch_mean))

    def _ed_variables(self):
        return self.encoder.trainable_variables + self.discriminator.trainable_variables

    def _fg_variables(self):
        return self.mapping.trainable_variables + self.generator.trainable_variables

    def _live_nets(self):
        nets = [self.mapping, self.generator]
        return nets + [self.encoder, self.discriminator] if self.progressive else nets

    def _ema_nets(self):
        nets = [self.mapping_ema, self.generator_ema]
        return nets + [self.encoder_ema, self.discriminator_ema] if self.progressive else nets

    def _ema_sources(self):
        return [v for net in self._live_nets() for v in net.weights]

    def _ema_variables(self):
        return [v for net in self._ema_nets() for v in net.weights]

    def _update_ema(self):
        beta = self.ema_beta

        def update(strategy):
            for ema_var, var in zip(self._ema_variables(), self._ema_sources()):
                # Mirrored variables may only be written per device from the cross-replica context.
                strategy.extended.update(ema_var.value, lambda e, v: e.assign(v + beta * (e - v)), args=(var.value,))

        context = tf.distribute.get_replica_context()
        if context is None:
            update(tf.distribute.get_strategy())
        else:
            context.merge_call(update)


def _apply(optimizer, grads, variables):
    """Apply the gradients that exist: at a low level, the higher levels' weights get none."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    optimizer.apply_gradients(pairs)


def reset_optimizer_state(optimizer):
    """Zero Adam's moments and step count (the loss scale of a float16 optimizer is kept)."""
    adam = getattr(optimizer, "inner_optimizer", optimizer)
    for variable in adam._momentums + adam._velocities:
        variable.assign(tf.zeros_like(variable))
    adam.iterations.assign(0)


def make_adam(config_train, learning_rate=None):
    """The reference's Adam: beta1 = 0, beta2 = 0.99, eps = 1e-8; with dynamic loss scaling under float16."""
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate or config_train.learning_rate,
        beta_1=config_train.adam_beta1,
        beta_2=config_train.adam_beta2,
        epsilon=config_train.adam_epsilon,
    )
    if config_train.mixed_precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_alae(config) -> ALAE:
    """Build (and compile) the ALAE of a resolved Config; call inside the strategy scope."""
    m, t = config.model, config.train
    progressive = m.backbone == "style"
    model = ALAE(
        build_networks(m),
        build_networks(m, name_suffix="_ema"),
        r1_gamma=t.r1_gamma,
        ema_beta=ema_decay(t.batch_size, t.ema_half_life_images),
        progressive=progressive,
        w_avg_beta=t.w_avg_beta,
        truncation_cutoff=t.truncation_cutoff,
        name="alae",
    )
    model.build_all(m.image_shape, m.latent_dim)
    model.compile(make_adam(t), make_adam(t), jit_compile=t.jit)
    return model
