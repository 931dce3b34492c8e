"""Training configs and batches for tests that drive a model directly (no CLI): the trainer's own data path."""

import keras
import numpy as np

from alae_tf import schedule
from alae_tf.config import Config
from alae_tf.data import ImageSource
from alae_tf.data.batches import training_batches
from alae_tf.run_dir import model_checkpoint


def batches_for(config, model, images=None, source=None, *, level=0, start_step=None, seed=0):
    """The batches `python -m alae_tf.train` would feed `model` at `level` of `config`'s schedule,
    from step `start_step` (default: the level's first step), over uint8 `images` or an ImageSource."""
    phase = schedule.phases(config)[level]
    source = source or ImageSource.from_arrays(images)
    return training_batches(source, phase, start_step=phase.first_step if start_step is None else start_step,
                            latent_dim=config.model.latent_dim, seed=seed, num_styles=model.generator.num_styles,
                            styles_in_use=model.generator.styles_per_level * (level + 1),
                            mixing_probability=config.train.style_mixing_prob)


def tiny_mlp_config() -> Config:
    """A small MLP ALAE on 8x8 images: same code paths as the mnist preset, milliseconds per step."""
    config = Config()
    config.model.image_shape = [8, 8, 1]
    config.model.latent_dim = 6
    config.model.mapping_layers = 2
    config.model.hidden_dim = 16
    config.model.disc_hidden = 6
    config.train.batch_size = 8
    config.train.steps = 10
    config.train.epochs = None
    config.train.ema_half_life_images = 20.0
    return config


def tiny_mlp_images() -> np.ndarray:
    """64 random uint8 8x8 images for tiny_mlp_config."""
    return np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)


class SaveAfter(keras.callbacks.Callback):
    """Saves the model's checkpoint after the `steps`-th step of a fit, as the trainer's saver does
    mid-fit; `path` is its prefix."""

    def __init__(self, steps, prefix):
        super().__init__()
        self.steps, self.prefix, self.path = steps, prefix, None

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.steps:
            self.path = model_checkpoint(self.model).save(self.prefix)
