"""The MNIST MLP backbone after the official ALAE code's (mnist_ref, mnist_fc config), as a
one-level, one-style, noise-free backbone of the protocol in `alae_tf.nets.protocol`. Leaky ReLUs
here have slope 0.2 throughout; the official G's hidden layers and E's output use PyTorch's default
0.01, which the `mlp_official` backbone (`build_official`, preset `mnist_official`) takes (README,
Differences from the official code):

G: 50 -> 1024 -> 1024 -> 784, leaky ReLU on the hidden layers, linear output
E: 784 -> 1024 -> 1024 -> 50, leaky ReLU after every layer, the output too
D: 50 -> 50 -> 50 -> 1, linear (no activations), lr x0.1
F is the shared `MappingNetwork`.
"""

import math

import keras
from keras import ops

from alae_tf.layers import EqualizedDense
from alae_tf.nets.discriminator import latent_discriminator

LEAK = 0.2
OFFICIAL_LEAK = 0.01  # the official G's hidden layers and E's output: F.leaky_relu's default slope


class MLPGenerator(keras.Model):
    levels = 1
    styles_per_level = 1
    num_styles = 1
    noise_stand_in = False

    def __init__(self, latent_dim, hidden_dim, image_shape, leak=LEAK, **kwargs):
        """`leak`: the slope of the hidden layers' leaky ReLUs."""
        super().__init__(**kwargs)
        self._image_shape = tuple(image_shape)
        self.body = keras.Sequential([
            keras.Input((latent_dim,)),
            EqualizedDense(hidden_dim),
            keras.layers.LeakyReLU(leak),
            EqualizedDense(hidden_dim),
            keras.layers.LeakyReLU(leak),
            EqualizedDense(math.prod(image_shape)),
            keras.layers.Reshape(self._image_shape),
        ], name="body")

    def image_shape(self, level=0):
        return self._image_shape

    def noise_shapes(self, level=0):
        return []

    def call(self, styles, level=None, blend=None, noise=None):
        """styles [B, 1, latent] or w [B, latent]; level, blend and noise have nothing to act on."""
        w = styles[:, 0] if len(styles.shape) == 3 else styles
        return self.body(w)


class MLPEncoder(keras.Model):
    levels = 1

    def __init__(self, image_shape, hidden_dim, latent_dim, output_activation=True, output_leak=LEAK, **kwargs):
        """`output_activation`: leaky ReLU on the output too, of slope `output_leak` (ALAE's E, as the
        reference); the baselines whose codes must match a Gaussian prior take a linear output."""
        super().__init__(**kwargs)
        head = [EqualizedDense(latent_dim)] + ([keras.layers.LeakyReLU(output_leak)] if output_activation else [])
        self._head_layers = len(head)
        self.body = keras.Sequential([
            keras.Input(tuple(image_shape)),
            keras.layers.Flatten(),
            EqualizedDense(hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            EqualizedDense(hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            *head,
        ], name="body")

    def call(self, images, level=None, blend=None):
        return self.body(images)

    def features(self, images, level=None, blend=None):
        """The last hidden layer [B, hidden_dim], after its activation (the reference's `f`)."""
        x = images
        for layer in self.body.layers[: -self._head_layers]:  # all but the output Dense (and its activation)
            x = layer(x)
        return ops.cast(x, "float32")


def build(config, name_suffix=""):
    """(G, E, D) of a `ModelConfig`."""
    m = config
    return (
        MLPGenerator(m.latent_dim, m.hidden_dim, m.image_shape, name="generator" + name_suffix),
        MLPEncoder(m.image_shape, m.hidden_dim, m.latent_dim, name="encoder" + name_suffix),
        latent_discriminator(m, "linear", name="discriminator" + name_suffix),
    )


def build_official(config, name_suffix=""):
    """(G, E, D) as the official mnist_ref networks compute them: G's hidden layers and E's output
    at slope 0.01 (with `mapping_layers: 0` for its identity F, the `mnist_official` preset)."""
    m = config
    return (
        MLPGenerator(m.latent_dim, m.hidden_dim, m.image_shape, leak=OFFICIAL_LEAK, name="generator" + name_suffix),
        MLPEncoder(m.image_shape, m.hidden_dim, m.latent_dim, output_leak=OFFICIAL_LEAK, name="encoder" + name_suffix),
        latent_discriminator(m, "linear", name="discriminator" + name_suffix),
    )
