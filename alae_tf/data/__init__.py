"""Dataset loaders."""

from alae_tf.data.images import ImageSource, open_image_source
from alae_tf.data.mnist import ImageSplits, load_mnist, read_idx

__all__ = ["ImageSource", "ImageSplits", "load_mnist", "open_image_source", "read_idx"]
