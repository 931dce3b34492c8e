"""Dataset loaders."""

from alae_tf.data.mnist import ImageSplits, load_mnist, read_idx

__all__ = ["ImageSplits", "load_mnist", "read_idx"]
