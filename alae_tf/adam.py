"""Adam with TensorFlow's fused update kernel.

Keras 3's Adam updates each variable with about a dozen elementwise ops (casts, two moment
updates, square, sqrt, divide, assign), each a pass over the tensor: for the MNIST MLP's 3.8M
weights, updated about twice per training step, that is memory traffic the fused kernel
(`tf.raw_ops.ResourceApplyAdam`: one pass over the variable, m, v and the gradient) avoids.
The formula and the state (m, v, iterations) are Keras's, so checkpoints of either load into
the other; results agree to float32 rounding.
"""

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam (without amsgrad) whose per-variable update is one fused kernel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad; use keras.optimizers.Adam")

    def update_step(self, gradient, variable, learning_rate):
        # `variable` is the tf.Variable (on this device, under a strategy): Keras's TensorFlow
        # optimizer passes `v.value`; m and v are this optimizer's slots for it.
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle, v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype),
        )
