"""F, shared by every backbone: pixel norm, then `layers` x (equalized dense, leaky ReLU) at a
reduced learning rate (0 layers: the identity, w = z).

F also keeps `w_avg`, the running mean of its output over training (the reference's
`dlatent_avg`; stylegan2-ada keeps it in its mapping network the same way), and truncates
toward it: w_avg + psi * (w - w_avg) on the first `truncation_cutoff` style inputs. Sampling,
grids, metrics and export all truncate through here, so they share one centre.
"""

import keras
import tensorflow as tf

from alae_tf.layers import EqualizedDense, PixelNorm

LEAK = 0.2


class MappingNetwork(keras.Model):
    def __init__(self, latent_dim, layers, lr_mul, truncation_cutoff, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.truncation_cutoff = truncation_cutoff
        body = [keras.Input((latent_dim,))]
        if layers == 0:
            body.append(keras.layers.Identity())
        else:
            body.append(PixelNorm())
            for _ in range(layers):
                body += [EqualizedDense(latent_dim, lr_mul=lr_mul), keras.layers.LeakyReLU(LEAK)]
        self.body = keras.Sequential(body, name="body")
        # Every replica assigns the same all-reduced value, so "mean" aggregation keeps them equal.
        self.w_avg = self.add_weight(name="w_avg", shape=(latent_dim,), initializer="zeros", trainable=False,
                                     aggregation="mean")

    def call(self, z):
        return self.body(z)

    def update_w_avg(self, w, beta):
        """w_avg <- lerp(mean of w over the global batch, w_avg, beta); call in the train step."""
        batch_mean = tf.reduce_mean(tf.cast(w, tf.float32), axis=0)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            batch_mean = context.all_reduce("mean", batch_mean)
        self.w_avg.assign(batch_mean + beta * (self.w_avg - batch_mean))

    def truncate(self, styles, psi):
        """w_avg + psi * (styles - w_avg) on style inputs [0, truncation_cutoff) of styles [B, S, latent].

        psi: a number, or one per row [B] (1 = no truncation)."""
        styles = tf.convert_to_tensor(styles)
        psi = tf.cast(psi, styles.dtype)
        if psi.shape.rank == 1:
            psi = psi[:, tf.newaxis, tf.newaxis]
        first = tf.range(tf.shape(styles)[1])[tf.newaxis, :, tf.newaxis] < self.truncation_cutoff
        w_avg = tf.cast(self.w_avg, styles.dtype)
        return tf.where(first, w_avg + psi * (styles - w_avg), styles)
