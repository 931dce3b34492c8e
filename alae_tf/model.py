"""The ALAE keras.Model: composes F, G, E, D and trains them with the paper's three updates.

Every batch from `alae_tf.data.pipeline` carries the real images and the three latent draws
(`z_d`, `z_g`, `z_ae`) of its step, so the step is a pure function of (weights, batch): the
result does not depend on how many replicas share the batch, and a resumed run draws the
same latents as an uninterrupted one.
"""

import keras
import tensorflow as tf

from alae_tf import losses
from alae_tf.nets import Networks, build_networks


def ema_decay(batch_size, half_life_images):
    """Per-step EMA decay whose weight halves every `half_life_images` images."""
    return 0.5 ** (batch_size / half_life_images)


class ALAE(keras.Model):
    def __init__(self, networks: Networks, ema_networks: Networks, *, r1_gamma=10.0, ema_beta=0.99, **kwargs):
        super().__init__(**kwargs)
        self.mapping = networks.mapping
        self.generator = networks.generator
        self.encoder = networks.encoder
        self.discriminator = networks.discriminator
        # Sampling and export use the EMA copy of the generator side (F, G).
        self.mapping_ema = ema_networks.mapping
        self.generator_ema = ema_networks.generator
        self.mapping_ema.trainable = False
        self.generator_ema.trainable = False
        self.r1_gamma = r1_gamma
        self.ema_beta = ema_beta
        self.trained_steps = self.add_weight(
            name="trained_steps",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss_d", "r1", "loss_g", "loss_lae")
        }

    def build_all(self, image_shape, latent_dim):
        """Create every weight (nets, EMA copies) and copy the live F, G into the EMA nets."""
        images = tf.zeros((1, *image_shape))
        z = tf.zeros((1, latent_dim))
        self.discriminator(self.encoder(self.generator(self.mapping(z))))
        self.generator_ema(self.mapping_ema(z))
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

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, images, training=False):
        """Reconstruction G_ema(E(x)), images in [-1, 1]."""
        return self.generator_ema(self.encoder(images, training=training), training=training)

    def generate(self, z, use_ema=True):
        mapping, generator = (self.mapping_ema, self.generator_ema) if use_ema else (self.mapping, self.generator)
        return generator(mapping(z))

    def train_step(self, data):
        images = data["images"]
        # Losses are means over this replica's share of the batch; dividing by the replica
        # count makes the summed (all-reduced) gradients those of the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss_d, r1 = self._discriminator_step(images, data["z_d"], replicas)
        loss_g = self._generator_step(data["z_g"], replicas)
        loss_lae = self._reciprocity_step(data["z_ae"], replicas)
        self._update_ema()
        self.trained_steps.assign_add(1)
        for name, value in (("loss_d", loss_d), ("r1", r1), ("loss_g", loss_g), ("loss_lae", loss_lae)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _d_of_e(self, images):
        return tf.cast(self.discriminator(self.encoder(images, training=True), training=True), tf.float32)

    def real_logits_and_gradients(self, images):
        """D(E(x)) and its per-image input gradient, differentiable again (for R1)."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            d_real = self._d_of_e(images)
            d_real_sum = tf.reduce_sum(d_real)  # images are independent: per-image gradients
        return d_real, tape.gradient(d_real_sum, images)

    def _discriminator_step(self, images, z, replicas):
        """Step I: E and D on softplus(D(E(fake))) + softplus(-D(E(real))) + R1 on the reals."""
        fakes = tf.stop_gradient(self.generator(self.mapping(z, training=True), training=True))
        variables = self._ed_variables()
        with tf.GradientTape() as tape:
            d_real, real_grads = self.real_logits_and_gradients(images)
            r1 = losses.r1_penalty(real_grads, self.r1_gamma)
            loss_d = losses.discriminator_loss(self._d_of_e(fakes), d_real)
            scaled = (loss_d + r1) / replicas
        self.optimizer_ed.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss_d, r1

    def _generator_step(self, z, replicas):
        """Step II: F and G on softplus(-D(E(G(F(z))))); E and D are not updated."""
        variables = self._fg_variables()
        with tf.GradientTape() as tape:
            fakes = self.generator(self.mapping(z, training=True), training=True)
            loss_g = losses.generator_loss(self._d_of_e(fakes))
            scaled = loss_g / replicas
        self.optimizer_fg.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss_g

    def _reciprocity_step(self, z, replicas):
        """Step III: ||F(z) - E(G(F(z)))||^2 updates E, G and F (through G's input); not D."""
        e_vars = self.encoder.trainable_variables
        fg_vars = self._fg_variables()
        with tf.GradientTape() as tape:
            w = self.mapping(z, training=True)
            w_rec = self.encoder(self.generator(w, training=True), training=True)
            loss_lae = losses.latent_reciprocity_loss(tf.cast(w, tf.float32), tf.cast(w_rec, tf.float32))
            scaled = loss_lae / replicas
        grads = tape.gradient(scaled, e_vars + fg_vars)
        self.optimizer_ed.apply_gradients(zip(grads[: len(e_vars)], e_vars))
        self.optimizer_fg.apply_gradients(zip(grads[len(e_vars) :], fg_vars))
        return loss_lae

    def _ed_variables(self):
        return self.encoder.trainable_variables + self.discriminator.trainable_variables

    def _fg_variables(self):
        return self.mapping.trainable_variables + self.generator.trainable_variables

    def _ema_sources(self):
        return self.mapping.weights + self.generator.weights

    def _ema_variables(self):
        return self.mapping_ema.weights + self.generator_ema.weights

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


def make_adam(config_train):
    """The reference's Adam: beta1 = 0, beta2 = 0.99, eps = 1e-8."""
    return keras.optimizers.Adam(
        learning_rate=config_train.learning_rate,
        beta_1=config_train.adam_beta1,
        beta_2=config_train.adam_beta2,
        epsilon=config_train.adam_epsilon,
    )


def build_alae(config) -> ALAE:
    """Build (and compile) the ALAE of a resolved Config; call inside the strategy scope."""
    m, t = config.model, config.train
    model = ALAE(
        build_networks(m),
        build_networks(m, name_suffix="_ema"),
        r1_gamma=t.r1_gamma,
        ema_beta=ema_decay(t.batch_size, t.ema_half_life_images),
        name="alae",
    )
    model.build_all(m.image_shape, m.latent_dim)
    model.compile(make_adam(t), make_adam(t), jit_compile=t.jit)
    return model
