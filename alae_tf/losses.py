"""The ALAE losses as pure functions of tensors (batch means; per-replica scaling is the
caller's job). `d_*` are discriminator logits D(E(.)), shape [batch]."""

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


def latent_reciprocity_loss(w, w_reconstructed):
    """Step III: mean((E(G(w)) - stopgrad(w))^2); F still learns through G's input."""
    return tf.reduce_mean(tf.square(w_reconstructed - tf.stop_gradient(w)))
