"""The MNIST MLP backbone of the official ALAE code (mnist_fc):

F: pixel norm, then `mapping_layers` x (50 -> 50, leaky ReLU), lr x0.1 (0 layers: identity)
G: 50 -> 1024 -> 1024 -> 784, leaky ReLU on the hidden layers, linear output
E: 784 -> 1024 -> 1024 -> 50, leaky ReLU after every layer, the output too
D: 50 -> 50 -> 50 -> 1, linear (no activations), lr x0.1
"""

import math

import keras

from alae_tf.config import ModelConfig
from alae_tf.layers import EqualizedDense, PixelNorm

LEAK = 0.2


def build_mapping(config: ModelConfig, name="mapping") -> keras.Sequential:
    layers = [keras.Input((config.latent_dim,))]
    if config.mapping_layers == 0:
        layers.append(keras.layers.Identity())
    else:
        layers.append(PixelNorm())
        for _ in range(config.mapping_layers):
            layers += [EqualizedDense(config.latent_dim, lr_mul=config.mapping_lr_mul), keras.layers.LeakyReLU(LEAK)]
    return keras.Sequential(layers, name=name)


def build_generator(config: ModelConfig, name="generator") -> keras.Sequential:
    pixels = math.prod(config.image_shape)
    return keras.Sequential(
        [
            keras.Input((config.latent_dim,)),
            EqualizedDense(config.hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            EqualizedDense(config.hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            EqualizedDense(pixels),
            keras.layers.Reshape(tuple(config.image_shape)),
        ],
        name=name,
    )


def build_encoder(config: ModelConfig, name="encoder") -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(tuple(config.image_shape)),
            keras.layers.Flatten(),
            EqualizedDense(config.hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            EqualizedDense(config.hidden_dim),
            keras.layers.LeakyReLU(LEAK),
            EqualizedDense(config.latent_dim),
            keras.layers.LeakyReLU(LEAK),
        ],
        name=name,
    )


def build_discriminator(config: ModelConfig, name="discriminator") -> keras.Sequential:
    layers = [keras.Input((config.latent_dim,))]
    for _ in range(config.disc_layers - 1):
        layers.append(EqualizedDense(config.disc_hidden, lr_mul=config.disc_lr_mul))
    layers.append(EqualizedDense(1, lr_mul=config.disc_lr_mul))
    layers.append(keras.layers.Reshape(()))
    return keras.Sequential(layers, name=name)
