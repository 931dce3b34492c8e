"""D, the latent discriminator: w [B, latent] -> one real/fake logit per row, shape [B]."""

import keras

from alae_tf.layers import EqualizedDense

LEAK = 0.2


def linear_discriminator(latent_dim, hidden_dim, layers, lr_mul, name="discriminator") -> keras.Sequential:
    """`layers` equalized dense layers and no activations (the MNIST reference's D, and the
    official StyleALAE code's MappingD)."""
    body = [keras.Input((latent_dim,))]
    for _ in range(layers - 1):
        body.append(EqualizedDense(hidden_dim, lr_mul=lr_mul))
    body += [EqualizedDense(1, lr_mul=lr_mul), keras.layers.Reshape(())]
    return keras.Sequential(body, name=name)


def leaky_discriminator(latent_dim, hidden_dim, layers, lr_mul, name="discriminator") -> keras.Sequential:
    """`layers` equalized dense layers with leaky ReLU between them (our StyleALAE's D)."""
    body = [keras.Input((latent_dim,))]
    for _ in range(layers - 1):
        body += [EqualizedDense(hidden_dim, lr_mul=lr_mul), keras.layers.LeakyReLU(LEAK)]
    body += [EqualizedDense(1, lr_mul=lr_mul), keras.layers.Reshape(())]
    return keras.Sequential(body, name=name)
