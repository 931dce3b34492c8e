"""Training data: datasets opened as one `ImageSource`, and the one tf.data batch pipeline.

Rooms: `mnist` (MNIST-format loaders), `files` (image-file conventions shared with `prepare`),
`pyramid` (resolution levels and the box filter), `stores` (read image i at resolution r),
`source` (`ImageSource`: split and seeded order), `datasets` (`open_image_source`, `open_run_images`), `batches`
(training and evaluation batches, uint8 <-> [-1, 1]), `prepare` (the folder -> TFRecords CLI).
"""

import importlib

# `from alae_tf.data import NAME` gives these, from their modules, imported on first use: they
# import TensorFlow, which `python -m alae_tf.data.prepare --help` does without.
HOMES = {"ImageSource": "source", "ImageSplits": "mnist", "load_mnist": "mnist", "open_image_source": "datasets",
         "open_run_images": "datasets", "read_idx": "mnist"}
__all__ = list(HOMES)


def __getattr__(name: str):
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{HOMES[name]}"), name)


def __dir__():  # the names above, for a notebook's completion and dir()
    return sorted([*globals(), *HOMES])
