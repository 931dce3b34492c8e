"""The one inference surface of a trained ALAE: a `Sampler` holds F, G and E (the EMA copies
where the run keeps them) at one level, and encodes, decodes, generates, reconstructs, mixes
styles, edits along directions and interpolates. Sample grids, callbacks, metrics, export and
the editing tools all call it, so they agree on which nets, which truncation centre and which
noise they use.

Shapes: z and w are [B, latent]; per-layer styles are [B, num_styles, latent] (one w per style
input of G; `styles(w)` repeats w); images given are float NHWC in [-1, 1] (uint8 pixels:
`alae_tf.data.batches.to_model_range`), and images returned are G's output as it is, mostly in
[-1, 1] but not clipped (`to_uint8` clips). Noise is a list of
per-pixel images (`noise_shapes`), `None` for none (StyleALAE's deterministic mean image), or
drawn from a seed with `noise(batch, seed)`; the MLP takes none and ignores it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from alae_tf.batch import SAMPLE_NOISE_STREAM
from serving import editing


def draw_noise(shapes, batch, seed, stream, draw=tf.random.stateless_normal):
    """Standard normal images [batch, *shape] for each shape (or other draws of a stateless
    `draw(shape, seed)`, e.g. tf.random.stateless_uniform), a pure function of (seed, stream).

    Inside a replica context each replica draws the noise of the whole global batch and keeps
    its own slice, so the noise of image i does not depend on how a batch is split."""
    context = tf.distribute.get_replica_context()
    replicas, replica = (1, 0) if context is None else (context.num_replicas_in_sync, context.replica_id_in_sync_group)
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])
    images = []
    for index, shape in enumerate(shapes):
        full = draw([batch * replicas, *shape], seed=seed + tf.constant([0, 100 * index], tf.int64))
        images.append(full[batch * replica : batch * (replica + 1)])
    return images


def float_images(images):
    """Images as a float32 tensor; integer pixels are refused, since E would read 255 as a value
    far beyond [-1, 1] (codes hundreds of units off, and no error)."""
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(f"images must be float in [-1, 1], got {images.dtype.name}: convert [0, 255] pixels with "
                         "alae_tf.data.batches.to_model_range (pixel / 127.5 - 1)")
    return tf.cast(images, tf.float32)


class Sampler:
    """F, G and E of one model at `level` (default: the top level, the full resolution), and at a
    fade-in `blend` of that level (default: none, the level fully in; the training grids of a level
    fading in pass the blend being trained)."""

    def __init__(self, mapping, generator, encoder, level=None, blend=None):
        self.mapping = mapping
        self.generator = generator
        self.encoder = encoder
        self.level = generator.levels - 1 if level is None else level
        self.blend = blend
        if not 0 <= self.level < generator.levels:
            raise ValueError(f"level {level} is not one of the generator's levels 0..{generator.levels - 1}")

    @classmethod
    def from_model(cls, model, use_ema=True, level=None, blend=None) -> "Sampler":
        """The sampling nets of an `alae_tf.model.ALAE`: each net's EMA copy if the run keeps one
        (and `use_ema`), else the live net."""
        nets = model.sampling_networks(use_ema)
        return cls(nets.mapping, nets.generator, nets.encoder, level, blend)

    # --- what the nets take and give --------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        return self.mapping.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.generator.image_shape(self.level))

    @property
    def num_styles(self) -> int:
        return self.generator.num_styles

    @property
    def styles_in_use(self) -> int:
        """Style inputs read at this level (the others have no effect)."""
        return self.generator.styles_per_level * (self.level + 1)

    @property
    def noise_shapes(self) -> list[tuple[int, int, int]]:
        return list(self.generator.noise_shapes(self.level))

    # --- latents ----------------------------------------------------------------------------

    def map(self, z):
        """w = F(z), float32."""
        return tf.cast(self.mapping(tf.convert_to_tensor(z, tf.float32)), tf.float32)

    def styles(self, w):
        """w [B, latent] -> the same w on every style input [B, num_styles, latent]."""
        return tf.repeat(tf.convert_to_tensor(w)[:, tf.newaxis, :], self.num_styles, axis=1)

    def truncate(self, styles, psi):
        """w_avg + psi * (styles - w_avg) on F's first `truncation_cutoff` style inputs (psi: number or [B])."""
        return self.mapping.truncate(styles, psi)

    def as_styles(self, w_or_styles):
        """w [B, latent] (on every style input) or styles [B, num_styles, latent] -> float32 styles."""
        w_or_styles = tf.convert_to_tensor(w_or_styles, tf.float32)
        if len(w_or_styles.shape) == 2:
            return self.styles(w_or_styles)
        if len(w_or_styles.shape) != 3 or w_or_styles.shape[1] != self.num_styles:
            raise ValueError(f"expected w [B, latent] or styles [B, {self.num_styles}, latent], got shape {w_or_styles.shape}")
        return w_or_styles

    def mix(self, destination, source, start, stop):
        """Styles [B, S, latent] of `destination` with inputs [start, stop) taken from `source`."""
        index = self._style_index_in(start, stop)
        return tf.where(index, source, destination)

    def edit(self, w_or_styles, direction, strength, start=0, stop=None):
        """Styles [B, S, latent]: w (or styles) moved by `strength` along `direction` [latent] on the
        style inputs [start, stop) (default: all). strength: a number or one per row [B]; 0 changes
        nothing. The arithmetic is serving.editing's, which the ONNX app API and the studio run."""
        stop = self.num_styles if stop is None else stop
        styles = editing.edit_styles(np.asarray(w_or_styles), np.asarray(direction), np.asarray(strength), start, stop,
                                     self.num_styles)
        return tf.constant(styles)

    def _style_index_in(self, start, stop):
        """[1, S, 1] booleans: style input i is in [start, stop)."""
        editing.check_layer_range(start, stop, self.num_styles)
        index = tf.range(self.num_styles)[tf.newaxis, :, tf.newaxis]
        return (index >= start) & (index < stop)

    @staticmethod
    def interpolate(a, b, steps):
        """[P, ...] x 2 -> [P * steps, ...]: `steps` points from a to b per row, exactly a and b at the ends."""
        a, b = tf.convert_to_tensor(a, tf.float32), tf.convert_to_tensor(b, tf.float32)
        t = tf.reshape(tf.linspace(0.0, 1.0, steps), [1, steps] + [1] * (len(a.shape) - 1))
        points = (1.0 - t) * a[:, tf.newaxis] + t * b[:, tf.newaxis]
        return tf.reshape(points, [-1, *a.shape[1:]])

    def noise(self, batch, seed, shared=False):
        """Seeded noise images for `batch` images; `shared`: one draw repeated for every image."""
        images = draw_noise(self.noise_shapes, 1 if shared else batch, seed, SAMPLE_NOISE_STREAM)
        return [tf.repeat(n, batch, axis=0) for n in images] if shared else images

    # --- images -----------------------------------------------------------------------------

    def encode(self, images):
        """w = E(images), float32; images [B, H, W, C] in [-1, 1] at this level's resolution."""
        return tf.cast(self.encoder(float_images(images), level=self.level, blend=self.blend), tf.float32)

    def features(self, images):
        """E's representation before its last linear map onto w (see the Encoder protocol), float32."""
        return tf.cast(self.encoder.features(float_images(images), level=self.level, blend=self.blend), tf.float32)

    def decode(self, w, noise=None):
        """G(w) for w [B, latent] (on every style input) or styles [B, num_styles, latent]."""
        return self.generator(tf.convert_to_tensor(w, tf.float32), level=self.level, blend=self.blend, noise=noise)

    def generate(self, z, truncation_psi=1.0, noise=None):
        """G(truncate(F(z), psi)); psi = 1 is no truncation."""
        return self.decode(self.truncate(self.styles(self.map(z)), truncation_psi), noise)

    def reconstruct(self, images, noise=None):
        """G(E(images))."""
        return self.decode(self.encode(images), noise)
