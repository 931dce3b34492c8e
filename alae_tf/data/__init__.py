"""Training data: datasets opened as one `ImageSource`, and the one tf.data batch pipeline.

Rooms: `mnist` (MNIST-format loaders), `files` (image-file conventions shared with `prepare`),
`pyramid` (resolution levels and the box filter), `stores` (read image i at resolution r),
`source` (`ImageSource`: split and seeded order), `datasets` (`open_image_source`, `open_run_images`), `batches`
(training and evaluation batches, uint8 <-> [-1, 1]), `prepare` (the folder -> TFRecords CLI).
"""

from alae_tf.data.datasets import open_image_source, open_run_images
from alae_tf.data.mnist import ImageSplits, load_mnist, read_idx
from alae_tf.data.source import ImageSource

__all__ = ["ImageSource", "ImageSplits", "load_mnist", "open_image_source", "open_run_images", "read_idx"]
