"""The baselines of the paper's MNIST comparison, trained by the same trainer as ALAE.

Each is a `TrainedModel` (alae_tf.model) on the MLP backbone's nets at the widths of the run's
config (the mnist presets: E 784-1024-1024-50, G 50-1024-1024-784), fed the same batches
(`alae_tf.batch`: the real images and the standard normal draws z_d, z_g, z_ae of every step),
with the same callbacks, checkpoints, resume, evaluation and export. F is the identity (a
`MappingNetwork` without layers): G decodes the code z itself, and samples decode z ~ N(0, I).

kind      E (code for probe / reconstruction)  other net            objectives (optimizer: loss)
ae_l1/l2  MLP E, leaky output as ALAE's          -                    E+G: sum |x - G(E(x))| (or squared)
vae       Gaussian q(z|x); the mean              -                    E+G: -log p(x|z) + KL(q || N(0, I))
aae       MLP E, linear output                   D(z), leaky          E+G: sum (x - G(E(x)))^2 + adv. generator on D(E(x));
                                                                      D: z ~ N(0, I) real, E(x) fake
bigan     MLP E, linear output                   D(x, z)              D: (x, E(x)) real, (G(z), z) fake; E+G: D's loss with
                                                                      the labels swapped (non-saturating for softplus;
                                                                      -loss_d for minimax and f-GANs; hinge: d_real - d_fake)
vaegan    Gaussian q(z|x); the mean              Dis(x), features l   E: KL + feature error at Dis_l; G: the same error + adv.
                                                                      generator on G(E(x)) and G(z); Dis: x real, both fake
avb       z = E(x, eps); E(x, 0)                 T(x, z)              E+G: -log p(x|z) + T(x, z) (the KL estimate); T: logistic,
                                                                      (x, z ~ q(z|x)) vs (x, z ~ N(0, I))

The adversarial pair is `train.adversarial_loss` (alae_tf.losses); AVB's T keeps the logistic
loss, under which T estimates log q(z|x) - log p(z). p(x|z) is Gaussian with std PIXEL_SIGMA.
Every group is updated from one forward pass per step (simultaneous gradient steps, one Adam
per group). Losses are batch means of per-image sums (pixels, code dimensions, features), so the
likelihood, KL and adversarial terms keep their textbook relative weights. z_d are the prior
draws a discriminator sees, z_g the ones G decodes, z_ae the encoder's noise eps.
"""

import math

import keras
import tensorflow as tf

from alae_tf import losses
from alae_tf.batch import DISCRIMINATOR, GENERATOR, IMAGES, RECIPROCITY
from alae_tf.layers import EqualizedDense
from alae_tf.model import TrainedModel, apply_existing_gradients, make_adam
from alae_tf.nets import Networks
from alae_tf.nets.discriminator import latent_discriminator
from alae_tf.nets.mapping import MappingNetwork
from alae_tf.nets.mlp import LEAK, MLPEncoder, MLPGenerator
from alae_tf.schedule import phases

PRIOR = DISCRIMINATOR.z  # z ~ N(0, I) shown to a discriminator
PRIOR_DECODED = GENERATOR.z  # z ~ N(0, I) decoded by G
ENCODER_NOISE = RECIPROCITY.z  # eps ~ N(0, I) of a stochastic encoder
PIXEL_SIGMA = 0.2  # std of p(x|z) in [-1, 1] pixel units (0.1 of the [0, 1] range)


def _f32(x):
    return tf.cast(x, tf.float32)


def _hidden_layers(input_dim, hidden_dim, name):
    """input -> (equalized dense, leaky ReLU) x 2, the MLP backbone's hidden widths."""
    return keras.Sequential([keras.Input((input_dim,)), EqualizedDense(hidden_dim), keras.layers.LeakyReLU(LEAK),
                             EqualizedDense(hidden_dim), keras.layers.LeakyReLU(LEAK)], name=name)


class GaussianEncoder(keras.Model):
    """q(z|x) = N(mean, exp(log_var)): the MLP encoder with 2 x latent linear outputs. As an encoder
    of the backbone protocol it gives the mean."""

    levels = 1

    def __init__(self, image_shape, hidden_dim, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.body = MLPEncoder(image_shape, hidden_dim, 2 * latent_dim, output_activation=False, name="body")

    def moments(self, images):
        out = _f32(self.body(images))
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def call(self, images, level=None, blend=None):
        return self.moments(images)[0]

    def features(self, images, level=None, blend=None):
        return self.body.features(images)


class NoisyEncoder(keras.Model):
    """AVB's implicit q(z|x): z = E(x, eps), eps ~ N(0, I) appended to the flattened image. As an
    encoder of the backbone protocol it gives E(x, 0)."""

    levels = 1

    def __init__(self, image_shape, hidden_dim, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.hidden = _hidden_layers(math.prod(image_shape) + latent_dim, hidden_dim, "hidden")
        self.head = EqualizedDense(latent_dim, name="head")

    def _hidden(self, images, eps):
        flat = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1])
        return self.hidden(tf.concat([flat, tf.cast(eps, tf.float32)], axis=-1))

    def sample(self, images, eps):
        return _f32(self.head(self._hidden(images, eps)))

    def call(self, images, level=None, blend=None):
        return self.sample(images, tf.zeros([tf.shape(images)[0], self.latent_dim]))

    def features(self, images, level=None, blend=None):
        """The last hidden layer at eps = 0."""
        return _f32(self._hidden(images, tf.zeros([tf.shape(images)[0], self.latent_dim])))


class JointDiscriminator(keras.Model):
    """BiGAN's D(x, z) and AVB's T(x, z): [flattened x, z] -> hidden x 2 -> one logit per row [B]."""

    def __init__(self, image_shape, latent_dim, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden = _hidden_layers(math.prod(image_shape) + latent_dim, hidden_dim, "hidden")
        self.head = EqualizedDense(1, name="head")

    def call(self, images, codes):
        flat = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1])
        return _f32(self.head(self.hidden(tf.concat([flat, tf.cast(codes, tf.float32)], axis=-1))))[:, 0]


class ImageDiscriminator(keras.Model):
    """VAE-GAN's Dis(x): flattened x -> hidden x 2 -> one logit per row; its last hidden layer is
    the feature space Dis_l where reconstructions are compared."""

    def __init__(self, image_shape, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden = _hidden_layers(math.prod(image_shape), hidden_dim, "hidden")
        self.head = EqualizedDense(1, name="head")

    def logits_and_features(self, images):
        features = self.hidden(tf.reshape(images, [tf.shape(images)[0], -1]))
        return _f32(self.head(features))[:, 0], _f32(features)

    def call(self, images):
        return self.logits_and_features(images)[0]


class Baseline(TrainedModel):
    """What the baselines share: F = identity, one level, no EMA copies. A subclass builds its nets
    and gives `optimizer_groups()` ({optimizer key: variables}) and `objectives(batch)` (the logged
    losses, and {optimizer key: the loss its optimizer minimises})."""

    ema_names = ()

    def __init__(self, m, encoder, discriminator, loss_names, adversarial_loss="softplus", **kwargs):
        """m: the ModelConfig; G is the MLP generator in every baseline."""
        super().__init__(loss_names, **kwargs)
        self.mapping = MappingNetwork(m.latent_dim, 0, 1.0, 0, name="mapping")
        self.generator = MLPGenerator(m.latent_dim, m.hidden_dim, m.image_shape, name="generator")
        self.encoder, self.discriminator = encoder, discriminator
        self.adversarial = losses.adversarial_loss(adversarial_loss)
        self.level = 0
        self.optimizers_by_key = {}

    def networks(self) -> Networks:
        return Networks(self.mapping, self.generator, self.encoder, self.discriminator)

    def sampling_networks(self, use_ema=True) -> Networks:
        return self.networks()

    def build_all(self):
        """Create every weight by running the objectives once on a batch of zeros."""
        latent_dim = self.mapping.latent_dim
        zeros = {IMAGES: tf.zeros([1, *self.generator.image_shape()])}
        zeros.update({key: tf.zeros([1, latent_dim]) for key in (PRIOR, PRIOR_DECODED, ENCODER_NOISE)})
        self.mapping(zeros[PRIOR])
        self.objectives(zeros)
        self.built = True

    def compile(self, optimizers: dict, **kwargs):
        """`optimizers`: {optimizer key: optimizer} for each key of `optimizer_groups()`."""
        super().compile(optimizer=None, **kwargs)
        self.optimizers_by_key = optimizers
        for key, variables in self.optimizer_groups().items():
            optimizers[key].build(variables)  # here, in the strategy scope (not inside a distributed step)

    def checkpointed_optimizers(self) -> dict:
        return dict(self.optimizers_by_key)

    def enter_phase(self, phase):
        """The one phase of the MLP backbone: its learning rate."""
        super().enter_phase(phase)
        for optimizer in self.optimizers_by_key.values():
            optimizer.learning_rate = phase.learning_rate

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync  # see ALAE.train_step
        groups = self.optimizer_groups()
        with tf.GradientTape(persistent=True) as tape:
            logged, objectives = self.objectives(data)
            scaled = {key: self.optimizers_by_key[key].scale_loss(objectives[key] / replicas) for key in groups}
        for key, variables in groups.items():
            apply_existing_gradients(self.optimizers_by_key[key], tape.gradient(scaled[key], variables), variables)
        del tape
        return self.finish_step(logged, [v for variables in groups.values() for v in variables])

    def optimizer_groups(self) -> dict:
        raise NotImplementedError

    def objectives(self, data):
        raise NotImplementedError

    def _autoencoder_variables(self):
        return self.encoder.trainable_variables + self.generator.trainable_variables

    def _decode(self, z):
        return _f32(self.generator(z, training=True))

    def _sample_posterior(self, images, data):
        """(z ~ q(z|x) by the reparameterisation with the batch's eps, mean, log variance)."""
        mean, log_var = self.encoder.moments(images)
        return mean + tf.exp(0.5 * log_var) * data[ENCODER_NOISE], mean, log_var


class Autoencoder(Baseline):
    def __init__(self, m, norm, **kwargs):
        super().__init__(m, MLPEncoder(m.image_shape, m.hidden_dim, m.latent_dim, name="encoder"), None, ("loss_rec",),
                         **kwargs)
        self.norm = norm

    def optimizer_groups(self):
        return {"optimizer_ae": self._autoencoder_variables()}

    def objectives(self, data):
        images = data[IMAGES]
        reconstructions = self._decode(self.encoder(images, training=True))
        error = losses.absolute_error if self.norm == "l1" else losses.squared_error
        loss_rec = error(images, reconstructions)
        return {"loss_rec": loss_rec}, {"optimizer_ae": loss_rec}


class VAE(Baseline):
    def __init__(self, m, **kwargs):
        super().__init__(m, GaussianEncoder(m.image_shape, m.hidden_dim, m.latent_dim, name="encoder"), None,
                         ("loss_rec", "kl"), **kwargs)

    def optimizer_groups(self):
        return {"optimizer_ae": self._autoencoder_variables()}

    def objectives(self, data):
        images = data[IMAGES]
        z, mean, log_var = self._sample_posterior(images, data)
        loss_rec = losses.gaussian_nll(images, self._decode(z), PIXEL_SIGMA)
        kl = losses.gaussian_kl(mean, log_var)
        return {"loss_rec": loss_rec, "kl": kl}, {"optimizer_ae": loss_rec + kl}


class AAE(Baseline):
    def __init__(self, m, **kwargs):
        super().__init__(m, MLPEncoder(m.image_shape, m.hidden_dim, m.latent_dim, output_activation=False, name="encoder"),
                         latent_discriminator(m, "leaky"),
                         ("loss_rec", "loss_d", "loss_g"), **kwargs)

    def optimizer_groups(self):
        return {"optimizer_ae": self._autoencoder_variables(), "optimizer_d": self.discriminator.trainable_variables}

    def objectives(self, data):
        images = data[IMAGES]
        codes = _f32(self.encoder(images, training=True))
        loss_rec = losses.squared_error(images, self._decode(codes))
        d_real = _f32(self.discriminator(data[PRIOR], training=True))
        d_fake = _f32(self.discriminator(codes, training=True))
        loss_d, loss_g = self.adversarial.discriminator(d_fake, d_real), self.adversarial.generator(d_fake)
        logged = {"loss_rec": loss_rec, "loss_d": loss_d, "loss_g": loss_g}
        return logged, {"optimizer_ae": loss_rec + loss_g, "optimizer_d": loss_d}


class BiGAN(Baseline):
    def __init__(self, m, **kwargs):
        super().__init__(m, MLPEncoder(m.image_shape, m.hidden_dim, m.latent_dim, output_activation=False, name="encoder"),
                         JointDiscriminator(m.image_shape, m.latent_dim, m.hidden_dim, name="discriminator"),
                         ("loss_d", "loss_eg"), **kwargs)

    def optimizer_groups(self):
        return {"optimizer_eg": self._autoencoder_variables(), "optimizer_d": self.discriminator.trainable_variables}

    def objectives(self, data):
        images, z = data[IMAGES], data[PRIOR_DECODED]
        d_real = self.discriminator(images, _f32(self.encoder(images, training=True)), training=True)
        d_fake = self.discriminator(self._decode(z), z, training=True)
        loss_d = self.adversarial.discriminator(d_fake, d_real)
        # E and G move both pairs (losses.AdversarialLoss.both_inputs says how each loss plays that game).
        loss_eg = self.adversarial.generator_of_both_inputs(d_fake, d_real)
        return {"loss_d": loss_d, "loss_eg": loss_eg}, {"optimizer_eg": loss_eg, "optimizer_d": loss_d}


class VAEGAN(Baseline):
    def __init__(self, m, **kwargs):
        super().__init__(m, GaussianEncoder(m.image_shape, m.hidden_dim, m.latent_dim, name="encoder"),
                         ImageDiscriminator(m.image_shape, m.hidden_dim, name="discriminator"),
                         ("kl", "loss_feature", "loss_d", "loss_g"), **kwargs)

    def optimizer_groups(self):
        return {"optimizer_e": self.encoder.trainable_variables, "optimizer_g": self.generator.trainable_variables,
                "optimizer_d": self.discriminator.trainable_variables}

    def objectives(self, data):
        images = data[IMAGES]
        z, mean, log_var = self._sample_posterior(images, data)
        d_real, features_real = self.discriminator.logits_and_features(images)
        d_rec, features_rec = self.discriminator.logits_and_features(self._decode(z))
        d_prior = self.discriminator(self._decode(data[PRIOR_DECODED]))
        kl = losses.gaussian_kl(mean, log_var)
        loss_feature = 0.5 * losses.squared_error(features_real, features_rec)  # -log N(Dis_l(x); Dis_l(x~), I)
        adversarial = self.adversarial
        loss_d = 0.5 * (adversarial.discriminator(d_rec, d_real) + adversarial.discriminator(d_prior, d_real))
        loss_g = 0.5 * (adversarial.generator(d_rec) + adversarial.generator(d_prior))
        logged = {"kl": kl, "loss_feature": loss_feature, "loss_d": loss_d, "loss_g": loss_g}
        return logged, {"optimizer_e": kl + loss_feature, "optimizer_g": loss_feature + loss_g, "optimizer_d": loss_d}


class AVB(Baseline):
    def __init__(self, m, **kwargs):
        super().__init__(m, NoisyEncoder(m.image_shape, m.hidden_dim, m.latent_dim, name="encoder"),
                         JointDiscriminator(m.image_shape, m.latent_dim, m.hidden_dim, name="discriminator"),
                         ("loss_rec", "kl_estimate", "loss_t"), **kwargs)

    def optimizer_groups(self):
        return {"optimizer_ae": self._autoencoder_variables(), "optimizer_d": self.discriminator.trainable_variables}

    def objectives(self, data):
        images = data[IMAGES]
        z = self.encoder.sample(images, data[ENCODER_NOISE])
        loss_rec = losses.gaussian_nll(images, self._decode(z), PIXEL_SIGMA)
        t_posterior = self.discriminator(images, z, training=True)
        t_prior = self.discriminator(images, data[PRIOR], training=True)
        kl_estimate = tf.reduce_mean(t_posterior)
        loss_t = losses.discriminator_loss(t_prior, t_posterior)  # posterior pairs are T's "real" class
        logged = {"loss_rec": loss_rec, "kl_estimate": kl_estimate, "loss_t": loss_t}
        return logged, {"optimizer_ae": loss_rec + kl_estimate, "optimizer_d": loss_t}


BASELINES = {
    "ae_l1": lambda m, **kwargs: Autoencoder(m, "l1", **kwargs),
    "ae_l2": lambda m, **kwargs: Autoencoder(m, "l2", **kwargs),
    "vae": VAE,
    "aae": AAE,
    "bigan": BiGAN,
    "vaegan": VAEGAN,
    "avb": AVB,
}


def build_baseline(config) -> Baseline:
    """Build and compile the baseline `model.kind` of a resolved Config; call inside the strategy scope."""
    m, t = config.model, config.train
    model = BASELINES[m.kind](m, adversarial_loss=t.adversarial_loss, name=m.kind)
    model.build_all()
    model.compile({key: make_adam(t) for key in model.optimizer_groups()}, jit_compile=t.jit)
    model.enter_phase(phases(config)[0])
    return model
