"""A small MNIST CNN whose penultimate layer is the feature space of FD-MNIST.

Network: conv 5x5x32 - maxpool - conv 5x5x64 - maxpool - dense 128 - ReLU - dropout 0.5 -
dense 10. The features are the 128 dense outputs before the ReLU: after it, units that are
never active on digits (about 20 of 128) would make every covariance matrix singular.
Inputs are uint8 digits, 28x28 or 32x32 (the style models' MNIST, zero padded by 2 pixels a
side: the centre 28x28 crop undoes the padding exactly), scaled to [0, 1].

The project ships trained weights (assets/mnist_classifier.weights.h5). Retrain them, bit for bit
on the same machine and TensorFlow build (seeded, op determinism on), with

    python -m alae_tf.metrics.train_mnist_classifier --out alae_tf/metrics/assets/mnist_classifier.weights.h5
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from alae_tf.errors import ALAEError, DataError

WEIGHTS = Path(__file__).parent / "assets" / "mnist_classifier.weights.h5"
RETRAIN = "python -m alae_tf.metrics.train_mnist_classifier --out PATH"
SIDE = 28
PADDED_SIDE = 32
FEATURE_LAYER = "features"
BATCH_SIZE = 128


class ClassifierWeightsError(ALAEError):
    """The MNIST classifier's weights file is missing or does not fit the network."""


def build_classifier() -> keras.Model:
    """The CNN, logits out; float32 whatever the global mixed-precision policy."""
    images = keras.Input((SIDE, SIDE, 1), name="images")
    x = keras.layers.Conv2D(32, 5, activation="relu", name="conv1", dtype="float32")(images)
    x = keras.layers.MaxPooling2D(name="pool1", dtype="float32")(x)
    x = keras.layers.Conv2D(64, 5, activation="relu", name="conv2", dtype="float32")(x)
    x = keras.layers.MaxPooling2D(name="pool2", dtype="float32")(x)
    x = keras.layers.Flatten(name="flatten", dtype="float32")(x)
    x = keras.layers.Dense(128, name=FEATURE_LAYER, dtype="float32")(x)
    x = keras.layers.ReLU(name="relu", dtype="float32")(x)
    x = keras.layers.Dropout(0.5, name="dropout", dtype="float32")(x)
    logits = keras.layers.Dense(10, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="mnist_classifier")


def load_classifier(path: str | Path | None = None) -> keras.Model:
    """The CNN with trained weights (default: the shipped ones)."""
    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise ClassifierWeightsError(f"MNIST classifier weights {path} not found; retrain them: {RETRAIN}")
    model = build_classifier()
    try:
        model.load_weights(path)
    except (OSError, ValueError) as exc:
        raise ClassifierWeightsError(
            f"cannot load MNIST classifier weights {path} ({exc}); retrain: {RETRAIN}") from exc
    return model


def uint8_pixels(images) -> np.ndarray:
    """`images` as a uint8 array, or a DataError: floats in [0, 1] or [-1, 1] divided by 255 would
    score as near-black digits without a word."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DataError(f"expected uint8 pixels in [0, 255], got {images.dtype} "
                        "(convert images in [-1, 1] with alae_tf.data.batches.to_uint8 first)")
    return images


READABLE_IMAGES = f"grayscale {SIDE}x{SIDE} or {PADDED_SIDE}x{PADDED_SIDE} digits"


def reads_image_shape(image_shape) -> bool:
    """Whether images of `image_shape` (height, width, channels) are digits the classifier reads."""
    height, width, channels = image_shape
    return channels == 1 and height == width and height in (SIDE, PADDED_SIDE)


def to_classifier_input(images_uint8) -> np.ndarray:
    """uint8 [N, 28|32, 28|32] or [N, 28|32, 28|32, 1] -> float32 [N, 28, 28, 1] in [0, 1]."""
    images = uint8_pixels(images_uint8)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or not reads_image_shape(images.shape[1:]):
        raise DataError(f"the MNIST classifier takes {READABLE_IMAGES}, got shape {images.shape}")
    margin = (images.shape[1] - SIDE) // 2
    images = images[:, margin : margin + SIDE, margin : margin + SIDE]
    return images.astype(np.float32) / 255.0


def feature_extractor(model: keras.Model) -> keras.Model:
    """images -> the 128 penultimate pre-activations of `model`."""
    return keras.Model(model.input, model.get_layer(FEATURE_LAYER).output)


def predict_batched(network: keras.Model, images_uint8, batch_size: int = 500) -> np.ndarray:
    """network(images) for uint8 digits, in batches, as float64 numpy."""
    outputs = [np.asarray(network(to_classifier_input(images_uint8[start : start + batch_size]), training=False))
               for start in range(0, len(images_uint8), batch_size)]
    return np.concatenate(outputs).astype(np.float64)


def accuracy(model: keras.Model, images_uint8, labels) -> float:
    return float(np.mean(np.argmax(predict_batched(model, images_uint8), axis=1) == np.asarray(labels)))


def train_classifier(data, epochs: int, seed: int) -> keras.Model:
    """Fit the CNN on data.train_images/labels (Adam 1e-3, batch 128), deterministically."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(to_classifier_input(data.train_images), data.train_labels, batch_size=BATCH_SIZE, epochs=epochs,
              shuffle=True, verbose=2)
    return model


def save_weights(model: keras.Model, path: Path) -> None:
    """The network's weights only (saving the compiled model would add the Adam moments)."""
    bare = build_classifier()
    bare.set_weights(model.get_weights())
    bare.save_weights(path)


if __name__ == "__main__":  # the command's old name: say where it went rather than do nothing
    import sys

    print("error: the retraining command is python -m alae_tf.metrics.train_mnist_classifier (see its --help)",
          file=sys.stderr)
    sys.exit(2)
