"""The four ALAE networks of each backbone, chosen by `model.backbone`."""

from dataclasses import dataclass

import keras

from alae_tf.config import ModelConfig
from alae_tf.nets import mlp, style


@dataclass
class Networks:
    mapping: keras.Model  # F: z -> w
    generator: keras.Model  # G: w -> image
    encoder: keras.Model  # E: image -> w
    discriminator: keras.Model  # D: w -> real/fake logit, shape [batch]


def build_networks(config: ModelConfig, name_suffix: str = "") -> Networks:
    if config.backbone == "mlp":
        return Networks(
            mapping=mlp.build_mapping(config, name="mapping" + name_suffix),
            generator=mlp.build_generator(config, name="generator" + name_suffix),
            encoder=mlp.build_encoder(config, name="encoder" + name_suffix),
            discriminator=mlp.build_discriminator(config, name="discriminator" + name_suffix),
        )
    if config.backbone == "style":
        return Networks(
            mapping=style.build_mapping(config, name="mapping" + name_suffix),
            generator=style.build_generator(config, name="generator" + name_suffix),
            encoder=style.build_encoder(config, name="encoder" + name_suffix),
            discriminator=style.build_discriminator(config, name="discriminator" + name_suffix),
        )
    raise ValueError(f"unknown backbone {config.backbone!r}")
