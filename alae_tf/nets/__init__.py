"""The four ALAE networks of each backbone, chosen by `model.backbone`."""

from dataclasses import dataclass

import keras

from alae_tf.config import ModelConfig
from alae_tf.nets import mlp, style

BACKBONES = {"mlp": mlp, "style": style}  # each module builds F, G, E and D


@dataclass
class Networks:
    mapping: keras.Model  # F: z -> w
    generator: keras.Model  # G: w -> image
    encoder: keras.Model  # E: image -> w
    discriminator: keras.Model  # D: w -> real/fake logit, shape [batch]


def build_networks(config: ModelConfig, name_suffix: str = "") -> Networks:
    if config.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {config.backbone!r}")
    backbone = BACKBONES[config.backbone]
    return Networks(
        mapping=backbone.build_mapping(config, name="mapping" + name_suffix),
        generator=backbone.build_generator(config, name="generator" + name_suffix),
        encoder=backbone.build_encoder(config, name="encoder" + name_suffix),
        discriminator=backbone.build_discriminator(config, name="discriminator" + name_suffix),
    )
