"""Training batches for tests that drive a model directly (no CLI): the trainer's own data path."""

from alae_tf import schedule
from alae_tf.data import ImageSource
from alae_tf.data.batches import training_batches


def batches_for(config, model, images=None, source=None, *, level=0, start_step=None, seed=0):
    """The batches `python -m alae_tf.train` would feed `model` at `level` of `config`'s schedule,
    from step `start_step` (default: the level's first step), over uint8 `images` or an ImageSource."""
    phase = schedule.phases(config)[level]
    source = source or ImageSource.from_arrays(images)
    return training_batches(source, phase, start_step=phase.first_step if start_step is None else start_step,
                            latent_dim=config.model.latent_dim, seed=seed, num_styles=model.generator.num_styles,
                            styles_in_use=model.generator.styles_per_level * (level + 1),
                            mixing_probability=config.train.style_mixing_prob)
