"""Building blocks shared by the backbones.

Equalized learning rate (Karras et al., PGGAN): weights are stored as N(0, 1/lr_mul) and
multiplied at run time by lr_mul * gain / sqrt(fan_in), biases by lr_mul. With Adam this
gives every layer the same effective learning rate, scaled by its lr_mul.
"""

import math

import keras
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
