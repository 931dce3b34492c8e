"""The four ALAE networks of each backbone, chosen by `model.backbone`.

Every backbone answers the calls of `alae_tf.nets.protocol`; this module only maps a
`ModelConfig` to each backbone's explicit hyperparameters. F is the same for all backbones.
"""

from dataclasses import dataclass

import keras

from alae_tf.config import ModelConfig
from alae_tf.nets import mlp, style
from alae_tf.nets.discriminator import EnergyDiscriminator
from alae_tf.nets.mapping import MappingNetwork

BACKBONE_BUILDERS = {"mlp": mlp.build, "mlp_official": mlp.build_official, "style": style.build,
                     "style_official": style.build_official}  # ModelConfig -> (G, E, D)


@dataclass
class Networks:
    mapping: MappingNetwork  # F: z -> w, with w_avg and truncation
    generator: keras.Model  # G: styles -> image
    encoder: keras.Model  # E: image -> w
    discriminator: keras.Model  # D: w -> real/fake logit (or energy), shape [batch]

    def by_name(self) -> dict[str, keras.Model]:
        """{"mapping": F, "generator": G, "encoder": E, "discriminator": D} (`alae_tf.config.NETS` order)."""
        return {"mapping": self.mapping, "generator": self.generator, "encoder": self.encoder,
                "discriminator": self.discriminator}


def build_networks(config: ModelConfig, truncation_cutoff: int, name_suffix: str = "",
                   energy_error: str | None = None) -> Networks:
    """`energy_error` ("norm" or "absolute", `alae_tf.losses.ENERGY_ERRORS`): D is the energy
    losses' autoencoder with that reconstruction error, in place of the backbone's logit D."""
    if config.backbone not in BACKBONE_BUILDERS:
        raise ValueError(f"unknown backbone {config.backbone!r}")
    generator, encoder, discriminator = BACKBONE_BUILDERS[config.backbone](config, name_suffix)
    if energy_error is not None:
        discriminator = EnergyDiscriminator(config.latent_dim, config.disc_hidden, config.disc_layers,
                                            config.energy_code_dim, config.disc_lr_mul, energy_error,
                                            name="discriminator" + name_suffix)
    mapping = MappingNetwork(config.latent_dim, config.mapping_layers, config.mapping_lr_mul, truncation_cutoff,
                             name="mapping" + name_suffix)
    return Networks(mapping, generator, encoder, discriminator)
