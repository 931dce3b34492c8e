"""D, the latent discriminator: w [B, latent] -> one score per row, shape [B]: a real/fake
logit, or for the energy losses (EBGAN, BEGAN) the energy of w under an autoencoder."""

import keras
from keras import ops

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


DISC_KINDS = {"linear": linear_discriminator, "leaky": leaky_discriminator}


def latent_discriminator(config, own_kind, name="discriminator") -> keras.Sequential:
    """D of a `ModelConfig`: of its `disc_kind`, or of the backbone's `own_kind` where that is unset."""
    build = DISC_KINDS[config.disc_kind or own_kind]
    return build(config.latent_dim, config.disc_hidden, config.disc_layers, config.disc_lr_mul, name=name)


class EnergyDiscriminator(keras.Model):
    """The energy losses' D (`train.adversarial_loss` ebgan or began): an autoencoder on w whose
    score is its reconstruction error per row: the Euclidean norm of the difference (EBGAN, eq. 5)
    or the mean absolute difference (BEGAN's L1, eta = 1). Encoder: `layers - 1` leaky hidden layers, then a
    linear code of `code_dim` (the bottleneck that keeps it from reconstructing every w);
    decoder: the mirror image."""

    def __init__(self, latent_dim, hidden_dim, layers, code_dim, lr_mul, error, **kwargs):
        super().__init__(**kwargs)
        if error not in ("norm", "absolute"):
            raise ValueError(f"error must be norm or absolute, got {error!r}")
        self.error = error

        def body(inputs, outputs, name):
            stack = [keras.Input((inputs,))]
            for _ in range(layers - 1):
                stack += [EqualizedDense(hidden_dim, lr_mul=lr_mul), keras.layers.LeakyReLU(LEAK)]
            return keras.Sequential(stack + [EqualizedDense(outputs, lr_mul=lr_mul)], name=name)

        self.encode = body(latent_dim, code_dim, "encode")
        self.decode = body(code_dim, latent_dim, "decode")

    def energy_and_code(self, w):
        """(energy [B], float32; code [B, code_dim])."""
        code = self.encode(w)
        difference = ops.cast(self.decode(code), "float32") - ops.cast(w, "float32")
        if self.error == "absolute":
            return ops.mean(ops.abs(difference), axis=-1), code
        # The epsilon keeps the norm's gradient finite at a perfect reconstruction.
        return ops.sqrt(ops.sum(ops.square(difference), axis=-1) + 1e-12), code

    def call(self, w):
        return self.energy_and_code(w)[0]
