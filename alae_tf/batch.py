"""The training batch schema: the keys the data pipeline writes and the ALAE train step reads.

Every batch carries the real images and every random draw of its step, so a step is a pure
function of (weights, batch) whatever the backbone, the replica count or a resume:

- `IMAGES`: float32 [B, H, W, C] in [-1, 1] at the phase's resolution (during a fade-in, blended
  with the level below's picture of them: `alae_tf.data.batches.faded_in`);
- per update (`DISCRIMINATOR`, `GENERATOR`, `RECIPROCITY`): latents z [B, latent]; for steps I
  and II also style-mixing latents [B, latent] and crossover points [B] int32 (the first style
  input taken from the mixing latent; `num_styles` means no mixing);
- `BLEND`: [B] float32, the fade-in weight of the phase's top level (the same in every row);
- `NOISE_SEED`: [B] int64, the step's seed for G's noise images (the same in every row).
"""

from dataclasses import dataclass

IMAGES = "images"
BLEND = "blend"
NOISE_SEED = "noise_seed"


@dataclass(frozen=True)
class Update:
    """Where the random draws of one of the three updates of a training step live in a batch."""

    z: str
    z_mix: str | None  # None: this update does not mix styles
    crossover: str | None
    noise_stream: int  # G's noise for this update is drawn from (noise seed, stream)


DISCRIMINATOR = Update("z_d", "z_d_mix", "crossover_d", noise_stream=1)  # step I
GENERATOR = Update("z_g", "z_g_mix", "crossover_g", noise_stream=2)  # step II
RECIPROCITY = Update("z_ae", None, None, noise_stream=3)  # step III
UPDATES = (DISCRIMINATOR, GENERATOR, RECIPROCITY)
MIXING_UPDATES = tuple(update for update in UPDATES if update.z_mix is not None)
SAMPLE_NOISE_STREAM = 4  # noise of images drawn outside training (grids, metrics)
PENALTY_STREAM = 5  # step I's draws for WGAN-GP's interpolation weights and DRAGAN's perturbations
