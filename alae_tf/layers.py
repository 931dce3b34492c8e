"""Building blocks shared by the backbones.

Equalized learning rate (Karras et al., PGGAN): weights are stored as N(0, 1/lr_mul) and
multiplied at run time by lr_mul * gain / sqrt(fan_in), biases by lr_mul. With Adam this
gives every layer the same effective learning rate, scaled by its lr_mul.
"""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="alae_tf")
class EqualizedDense(keras.layers.Layer):
    def __init__(self, units, gain=math.sqrt(2.0), lr_mul=1.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gain = gain
        self.lr_mul = lr_mul
        self.use_bias = use_bias

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_mul),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
        )
        self.runtime_scale = self.lr_mul * self.gain / math.sqrt(fan_in)

    def call(self, inputs):
        # Scaling the (batch x units) product is cheaper than scaling the (fan_in x units) kernel.
        outputs = ops.matmul(inputs, self.kernel) * self.runtime_scale
        if self.bias is not None:
            outputs = outputs + self.bias * self.lr_mul
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "gain": self.gain,
            "lr_mul": self.lr_mul,
            "use_bias": self.use_bias,
        }


def use_scales(layer) -> dict[str, float]:
    """The factor each weight of `layer` and its sublayers is multiplied by where it is used, by the
    weight's path: an equalized layer's kernel by its runtime scale, an EqualizedDense's bias by its
    lr_mul; weights not listed are used as stored."""
    scales = {}
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):  # Keras 3 has no public recursive walk
        if hasattr(sublayer, "runtime_scale"):
            scales[sublayer.kernel.path] = sublayer.runtime_scale
            if getattr(sublayer, "bias", None) is not None:
                scales[sublayer.bias.path] = sublayer.lr_mul
    return scales


@keras.saving.register_keras_serializable(package="alae_tf")
class PixelNorm(keras.layers.Layer):
    """Normalises each feature vector to unit root-mean-square (StyleGAN's mapping input)."""

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        return inputs * ops.rsqrt(ops.mean(ops.square(inputs), axis=-1, keepdims=True) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _he_scale(fan_in, gain, lr_mul):
    return lr_mul * gain / math.sqrt(fan_in)


@keras.saving.register_keras_serializable(package="alae_tf")
class EqualizedConv2D(keras.layers.Layer):
    """Square 'same'-padded convolution with equalized learning rate (no bias: see `Bias`)."""

    def __init__(self, filters, kernel_size=3, gain=math.sqrt(2.0), **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.gain = gain

    def build(self, input_shape):
        fan_in = input_shape[-1] * self.kernel_size**2
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, input_shape[-1], self.filters),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.runtime_scale = _he_scale(fan_in, self.gain, 1.0)

    def call(self, inputs):
        return ops.conv(inputs, self.kernel, padding="same") * self.runtime_scale

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "gain": self.gain}


@keras.saving.register_keras_serializable(package="alae_tf")
class Bias(keras.layers.Layer):
    """Per-channel bias (kept apart from the convolution so noise can be added in between)."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)


@keras.saving.register_keras_serializable(package="alae_tf")
class Blur(keras.layers.Layer):
    """[1, 2, 1] x [1, 2, 1] / 16 low-pass filter per channel (StyleGAN's anti-aliasing)."""

    def build(self, input_shape):
        taps = np.array([1.0, 2.0, 1.0])
        kernel = np.outer(taps, taps) / 16.0
        self.kernel = np.tile(kernel[:, :, None, None], (1, 1, input_shape[-1], 1)).astype("float32")

    def call(self, inputs):
        return ops.depthwise_conv(inputs, ops.cast(self.kernel, inputs.dtype), padding="same")


@keras.saving.register_keras_serializable(package="alae_tf")
class NoiseInjection(keras.layers.Layer):
    """x + per-channel weight * noise, the noise image [B, H, W, 1] given as an input.

    Without noise: x itself (the deterministic mean image), or with `stand_in_scale` s the
    official code's deterministic stand-in x + s exp(-x^2 / 2s^2) / sqrt(2 pi) * 0.8 (it never
    leaves the noise out; kept for numerical parity with its checkpoints)."""

    def __init__(self, stand_in_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.stand_in_scale = stand_in_scale

    def build(self, input_shape):
        self.weight = self.add_weight(name="weight", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs, noise=None):
        if noise is not None:
            return inputs + ops.cast(noise, inputs.dtype) * ops.cast(self.weight, inputs.dtype)
        if self.stand_in_scale is None:
            return inputs
        s = self.stand_in_scale
        return inputs + s * ops.exp(-ops.square(inputs) / (2.0 * s * s)) * (0.8 / math.sqrt(2.0 * math.pi))

    def get_config(self):
        return {**super().get_config(), "stand_in_scale": self.stand_in_scale}


def spatial_mean(x):
    """Mean over H, W of NHWC `x`, kept as [B, 1, 1, C]: the mean of each row's mean. One
    reduction over a 1024x1024 map adds a million float32 roundings in a row: the FFHQ-size
    encoder's w (random weights, |w| up to 31) was 3.4e-4 from its float64 value, 2.7e-5 with
    rows first, as close as the official code's float32 (2.5e-5; benchmarks/official_precision.py,
    2-core AVX2 EPYC, 2026-12-07)."""
    return ops.mean(ops.mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


def instance_moments(x):
    """Per-image, per-channel mean [B, C], (biased) variance [B, C] and centred map x - mean
    [B, H, W, C] over H, W of NHWC `x`, in float32 (float64 for a float64 `x`: a reference run).

    Computed around each map's first pixel (shifted data): the small deviations of a nearly flat
    map (a barely trained generator's constant input) stay exact instead of drowning in the
    rounding of a mean near 1, so TF and ONNX Runtime normalise it alike. The shift is held
    constant for the gradient, which the variance does not depend on."""
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        x = ops.cast(x, "float32")
    shift = ops.stop_gradient(x[:, :1, :1, :])
    offset = spatial_mean(x - shift)
    centred = (x - shift) - offset
    return (shift + offset)[:, 0, 0, :], spatial_mean(ops.square(centred))[:, 0, 0, :], centred


def instance_normalize(centred, variance, epsilon, dtype):
    """The centred map of `instance_moments` over sqrt(variance + epsilon), cast to `dtype` (no affine part)."""
    # A multiply by rsqrt, not a divide by sqrt: 2% of the StyleALAE step on CPU (its gradient is lighter).
    return ops.cast(centred * ops.rsqrt(variance + epsilon)[:, None, None, :], dtype)


@keras.saving.register_keras_serializable(package="alae_tf")
class AdaIN(keras.layers.Layer):
    """Instance-normalise x, then modulate with a style from w: x * (1 + y_s) + y_b."""

    def build(self, x_shape, w_shape):
        # Created on first call, after a frozen net (an EMA copy) set trainable: inherit it here.
        self.style = EqualizedDense(2 * x_shape[-1], gain=1.0, name="style", trainable=self.trainable)
        self.style.build(w_shape)

    def call(self, x, w):
        _, variance, centred = instance_moments(x)
        x = instance_normalize(centred, variance, 1e-8, x.dtype)
        y_scale, y_bias = ops.split(ops.cast(self.style(w), x.dtype), 2, axis=-1)
        return x * (1.0 + y_scale[:, None, None, :]) + y_bias[:, None, None, :]


def _sum_of_shifts(kernel):
    """The official code's `transform_kernel`: a k x k kernel padded by one and summed over its
    four 2x2 shifts -> (k + 1) x (k + 1). Applied with stride 2 it fuses a 2x resampling with the
    convolution. Kernels are [kh, kw, ...]."""
    rest = [[0, 0]] * (len(kernel.shape) - 2)
    # Four pads rather than one pad and four slices: a pad's gradient is a plain slice, a strided
    # slice's a zero-filled scatter (~6% of the StyleALAE step's kernel time on a CPU).
    first, second = [0, 1], [1, 0]
    return (ops.pad(kernel, [first, first] + rest) + ops.pad(kernel, [second, first] + rest)
            + ops.pad(kernel, [first, second] + rest) + ops.pad(kernel, [second, second] + rest))


@keras.saving.register_keras_serializable(package="alae_tf")
class UpscaleConv2D(keras.layers.Layer):
    """Nearest 2x upscale + 3x3 'same' conv, computed as one stride-2 transposed convolution of
    the 4x4 sum-of-shifts kernel: 4 taps per output pixel instead of 9. The same function as
    EqualizedConv2D on upsample2x(x), with the same kernel ([3, 3, in, out], a convolution's
    orientation), so either reads the other's weights. Equalized learning rate; no bias."""

    def __init__(self, filters, gain=math.sqrt(2.0), **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.gain = gain

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(3, 3, input_shape[-1], self.filters),
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.runtime_scale = _he_scale(input_shape[-1] * 9, self.gain, 1.0)

    def call(self, inputs):
        kernel = ops.cast(self.kernel, inputs.dtype) * self.runtime_scale
        # A transposed convolution applies its kernel mirrored, laid out [kh, kw, out, in].
        kernel = ops.transpose(ops.flip(kernel, axis=(0, 1)), (0, 1, 3, 2))
        return ops.conv_transpose(inputs, _sum_of_shifts(kernel), strides=2, padding="same")

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, None if height is None else 2 * height, None if width is None else 2 * width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "gain": self.gain}


@keras.saving.register_keras_serializable(package="alae_tf")
class DownscaleConv2D(keras.layers.Layer):
    """3x3 'same' conv + 2x2 mean downscale, computed as one stride-2 convolution of the 4x4
    sum-of-shifts kernel / 4: 16 taps per output pixel instead of 4 x 9. The same function as
    downsample2x of EqualizedConv2D, with the same kernel. Equalized learning rate; no bias."""

    def __init__(self, filters, gain=math.sqrt(2.0), **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.gain = gain

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(3, 3, input_shape[-1], self.filters),
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.runtime_scale = _he_scale(input_shape[-1] * 9, self.gain, 1.0)

    def call(self, inputs):
        kernel = _sum_of_shifts(ops.cast(self.kernel, inputs.dtype) * self.runtime_scale) * 0.25
        return ops.conv(inputs, kernel, strides=2, padding="same")

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, None if height is None else height // 2, None if width is None else width // 2, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "gain": self.gain}


def upsample2x(x):
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


def downsample2x(x):
    """2x2 mean (box filter), the same as the data pipeline's level downsampling."""
    return ops.average_pool(x, pool_size=2, strides=2, padding="valid")
