"""The ALAE losses as pure functions of tensors (batch means; per-replica scaling is the
caller's job). `d_*` are discriminator scores D(E(.)), shape [batch]: logits, or for the energy
losses (EBGAN, BEGAN) energies, the reconstruction error of D's autoencoder on w.

The adversarial pair (step I's discriminator loss, step II's generator loss) is chosen by
`train.adversarial_loss` (config.ADVERSARIAL_LOSSES names them); the paper's is `softplus`."""

import math
from dataclasses import dataclass
from typing import Callable

import tensorflow as tf


def discriminator_loss(d_fake, d_real):
    """Step I: softplus(D(E(G(F(z))))) + softplus(-D(E(x)))."""
    return tf.reduce_mean(tf.nn.softplus(d_fake) + tf.nn.softplus(-d_real))


def generator_loss(d_fake):
    """Step II, non-saturating: softplus(-D(E(G(F(z)))))."""
    return tf.reduce_mean(tf.nn.softplus(-d_fake))


def r1_penalty(real_grads, gamma):
    """(gamma / 2) * ||grad_x D(E(x))||^2, summed per image, averaged over the batch."""
    per_image = tf.reduce_sum(tf.square(real_grads), axis=tf.range(1, tf.rank(real_grads)))
    return 0.5 * gamma * tf.reduce_mean(per_image)


def gradient_norm_penalty(grads, weight):
    """weight * (||grad D(E(x_hat))|| - 1)^2 per image, averaged (WGAN-GP at interpolates, DRAGAN
    at perturbed reals). A tiny epsilon keeps the norm differentiable at a zero gradient."""
    per_image = tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads)))
    return weight * tf.reduce_mean(tf.square(tf.sqrt(per_image + 1e-12) - 1.0))


def latent_reciprocity_loss(w, w_reconstructed):
    """Step III: mean((E(G(w)) - stopgrad(w))^2); F still learns through G's input."""
    return tf.reduce_mean(tf.square(w_reconstructed - tf.stop_gradient(w)))


# The baselines' likelihood terms (alae_tf.baselines): per-image sums, averaged over the batch.


def _per_image_sum(values):
    return tf.reduce_sum(values, axis=tf.range(1, tf.rank(values)))


def absolute_error(x, y):
    """sum |x - y| per image (the l1 autoencoder's reconstruction loss)."""
    return tf.reduce_mean(_per_image_sum(tf.abs(x - y)))


def squared_error(x, y):
    """sum (x - y)^2 per image (the l2 autoencoder's reconstruction loss)."""
    return tf.reduce_mean(_per_image_sum(tf.square(x - y)))


def gaussian_nll(x, mean, sigma):
    """-log N(x; mean, sigma^2 I) per image, without its constant: sum (x - mean)^2 / (2 sigma^2)."""
    return squared_error(x, mean) / (2.0 * sigma**2)


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per row: sum (exp(log_var) + mean^2 - 1 - log_var) / 2."""
    return tf.reduce_mean(0.5 * _per_image_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var))


# The other adversarial losses. Each pair: discriminator(d_fake, d_real) and generator(d_fake).


def minimax_generator_loss(d_fake):
    """The original GAN's saturating generator loss: mean(log(1 - sigmoid(d))) = -softplus(d)."""
    return -tf.reduce_mean(tf.nn.softplus(d_fake))


def least_squares_discriminator_loss(d_fake, d_real):
    """LSGAN (Mao et al. 2017, a = 0, b = c = 1): ((d_real - 1)^2 + d_fake^2) / 2."""
    return 0.5 * tf.reduce_mean(tf.square(d_real - 1.0)) + 0.5 * tf.reduce_mean(tf.square(d_fake))


def least_squares_generator_loss(d_fake):
    return 0.5 * tf.reduce_mean(tf.square(d_fake - 1.0))


def hinge_discriminator_loss(d_fake, d_real):
    """Hinge (Lim & Ye 2017; SAGAN): relu(1 - d_real) + relu(1 + d_fake)."""
    return tf.reduce_mean(tf.nn.relu(1.0 - d_real)) + tf.reduce_mean(tf.nn.relu(1.0 + d_fake))


def critic_generator_loss(d_fake):
    """Hinge's and WGAN's generator loss: -d_fake."""
    return -tf.reduce_mean(d_fake)


def wasserstein_discriminator_loss(d_fake, d_real):
    """WGAN (Arjovsky et al. 2017): the critic maximises d_real - d_fake. Needs a Lipschitz
    constraint: train.weight_clip, or train.gradient_penalty wgan_gp."""
    return tf.reduce_mean(d_fake) - tf.reduce_mean(d_real)


@dataclass(frozen=True)
class FDivergence:
    """An f-GAN divergence (Nowozin et al. 2016, table 6): the output activation g_f(v) and
    f*(g_f(v)), the convex conjugate of f at it, written out in v (the composed textbook form
    overflows or takes the log of 0 for large |v|; the test checks both agree)."""

    activation: Callable
    conjugate_of_activation: Callable


F_DIVERGENCES = {
    "kl": FDivergence(lambda v: v, lambda v: tf.exp(v - 1.0)),  # f*(t) = exp(t - 1)
    "reverse_kl": FDivergence(lambda v: -tf.exp(-v), lambda v: v - 1.0),  # f*(t) = -1 - log(-t)
    "pearson": FDivergence(lambda v: v, lambda v: 0.25 * tf.square(v) + v),  # f*(t) = t^2 / 4 + t
    "hellinger": FDivergence(lambda v: 1.0 - tf.exp(-v), lambda v: tf.exp(v) - 1.0),  # f*(t) = t / (1 - t)
    "js": FDivergence(lambda v: math.log(2.0) - tf.nn.softplus(-v),  # f*(t) = -log(2 - exp(t))
                      lambda v: tf.nn.softplus(v) - math.log(2.0)),
}


def f_discriminator_loss(divergence: FDivergence):
    """-(mean g_f(d_real) - mean f*(g_f(d_fake))): the negated variational lower bound of the divergence."""
    return lambda d_fake, d_real: (tf.reduce_mean(divergence.conjugate_of_activation(d_fake))
                                   - tf.reduce_mean(divergence.activation(d_real)))


def f_generator_loss(divergence: FDivergence):
    """f-GAN's alternative (non-saturating) generator loss: -mean g_f(d_fake)."""
    return lambda d_fake: -tf.reduce_mean(divergence.activation(d_fake))


# The energy losses. D is an autoencoder on w and its score the reconstruction error
# (alae_tf.nets.discriminator.EnergyDiscriminator): low on real codes, high on fakes. Each loss's
# error: EBGAN's Euclidean norm (Zhao et al. 2017, eq. 5), BEGAN's absolute (Berthelot et al. 2017, eta = 1).
ENERGY_ERRORS = {"ebgan": "norm", "began": "absolute"}


def ebgan_discriminator_loss(margin):
    """EBGAN (Zhao et al. 2017, eq. 1): D(real) + [margin - D(fake)]^+ on energies."""
    return lambda e_fake, e_real: tf.reduce_mean(e_real) + tf.reduce_mean(tf.nn.relu(margin - e_fake))


def energy_generator_loss(e_fake):
    """EBGAN's and BEGAN's generator loss: the fakes' energy, mean D(fake)."""
    return tf.reduce_mean(e_fake)


def pullaway_term(codes):
    """EBGAN's pulling-away term (eq. 6): the mean squared cosine similarity of every pair of
    distinct rows of `codes` [N, dims] (D's autoencoder codes of the fakes)."""
    unit = tf.math.l2_normalize(codes, axis=1)
    n = tf.cast(tf.shape(codes)[0], codes.dtype)
    cosines = tf.matmul(unit, unit, transpose_b=True)
    return (tf.reduce_sum(tf.square(cosines)) - tf.linalg.trace(tf.square(cosines))) / (n * (n - 1.0))


def began_discriminator_loss(k):
    """BEGAN (Berthelot et al. 2017, eq. 4): L(real) - k_t L(fake), with `k` the equilibrium
    variable (read when the loss is computed)."""
    return lambda e_fake, e_real: tf.reduce_mean(e_real) - tf.cast(k, tf.float32) * tf.reduce_mean(e_fake)


def began_next_k(k, real_energy, fake_energy, gamma, lambda_k):
    """k_{t+1} = clip(k_t + lambda_k (gamma L(real) - L(fake)), 0, 1): proportional control of
    the equilibrium E[L(fake)] = gamma E[L(real)]; `fake_energy` is the generator step's."""
    return tf.clip_by_value(k + lambda_k * (gamma * real_energy - fake_energy), 0.0, 1.0)


def began_convergence(real_energy, fake_energy, gamma):
    """BEGAN's convergence measure M_global = L(real) + |gamma L(real) - L(fake)|."""
    return real_energy + tf.abs(gamma * real_energy - fake_energy)


def minimax_game_loss(discriminator):
    """The saturating losses' generator side where both of D's inputs move: -D's loss."""
    return lambda d_fake, d_real: -discriminator(d_fake, d_real)


def critic_game_loss(d_fake, d_real):
    """Hinge's generator side where both of D's inputs move: the critic score on each, -d_fake + d_real."""
    return tf.reduce_mean(d_real) - tf.reduce_mean(d_fake)


@dataclass(frozen=True)
class AdversarialLoss:
    discriminator: Callable  # (d_fake, d_real) -> scalar, step I
    generator: Callable  # d_fake -> scalar, step II
    # (d_fake, d_real) -> scalar: the generator side's loss where both of D's inputs move (BiGAN's E
    # and G); None: D's loss with the labels swapped, the non-saturating form of the game.
    both_inputs: Callable | None = None

    def generator_of_both_inputs(self, d_fake, d_real):
        if self.both_inputs is None:
            return self.discriminator(d_real, d_fake)
        return self.both_inputs(d_fake, d_real)


_LOSSES = {
    "softplus": AdversarialLoss(discriminator_loss, generator_loss),
    "minimax": AdversarialLoss(discriminator_loss, minimax_generator_loss, minimax_game_loss(discriminator_loss)),
    "least_squares": AdversarialLoss(least_squares_discriminator_loss, least_squares_generator_loss),
    "hinge": AdversarialLoss(hinge_discriminator_loss, critic_generator_loss, critic_game_loss),
    "wasserstein": AdversarialLoss(wasserstein_discriminator_loss, critic_generator_loss, critic_game_loss),
    **{f"f_{name}": AdversarialLoss(f_discriminator_loss(d), f_generator_loss(d), minimax_game_loss(f_discriminator_loss(d)))
       for name, d in F_DIVERGENCES.items()},
}


def adversarial_loss(name: str, *, energy_margin=None, began_k=None) -> AdversarialLoss:
    """The pair named `name`, one of config.ADVERSARIAL_LOSSES; EBGAN's takes its margin, BEGAN's
    its equilibrium variable k."""
    if name == "ebgan":
        return AdversarialLoss(ebgan_discriminator_loss(energy_margin), energy_generator_loss)
    if name == "began":
        return AdversarialLoss(began_discriminator_loss(began_k), energy_generator_loss)
    return _LOSSES[name]
