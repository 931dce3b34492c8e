"""StyleALAE: a StyleGAN generator G and a mirrored encoder E whose per-layer instance
statistics are mapped into w, and a 3-layer latent discriminator D (F is the shared
`MappingNetwork`). A growing backbone of the protocol in `alae_tf.nets.protocol`.

Levels count resolutions: level 0 is 4x4, level L is 4 * 2^L. Both G and E hold every level's
weights and run up to `level`; during a transition (`blend` in [0, 1)) the new top level is
faded in against the previous level's output (G) or input (E), as in progressive growing.
Channels per level: min(max_channels, start_channels * 2^(levels - 1 - level)).

G, per level: (level > 0: 2x nearest upsample and 3x3 conv as one stride-2 transposed conv,
blur) | (level 0: learned constant), then noise, bias, leaky ReLU, AdaIN from w; 3x3 conv,
noise, bias, leaky ReLU, AdaIN. A 1x1 toRGB per level. Two style inputs per level, so
2 * levels style inputs in all.

E, per level (top down): 1x1 fromRGB + leaky ReLU (once: the reference applies it twice);
3x3 conv, bias, leaky ReLU, statistics [mean; std] -> C_1, instance norm; blur, 3x3 conv and
2x2 mean downsample as one stride-2 conv, bias, leaky ReLU, statistics -> C_2, instance norm.
Level 0 ends with a dense layer on the flattened 4x4 map whose output feeds C_2 directly.
w = sum of all C_i(...).

The stride-2 resampling convolutions are the official code's fused_scale (which it uses from
128x128 up), here at every level: the same function with 4 taps per output pixel instead of 9.

`StyleVariant` holds what the official code's networks do differently (the `style_official`
backbone, for its checkpoints: `alae_tf.convert`): its deterministic stand-in for noise,
fromRGB's leaky ReLU applied twice, no epsilon in the encoder's std (instance norm with 1e-5),
and an encoder whose 4x4 block downsamples to 2x2 like the others instead of ending in a dense
layer (`EncoderDefault`).
"""

import math
from dataclasses import dataclass, replace

import keras
from keras import ops

from alae_tf.layers import (
    AdaIN, Bias, Blur, DownscaleConv2D, EqualizedConv2D, EqualizedDense, NoiseInjection, UpscaleConv2D,
    downsample2x, instance_moments, instance_normalize, upsample2x,
)
from alae_tf.levels import growing_levels, level_resolution
from alae_tf.nets.discriminator import latent_discriminator

LEAK = 0.2


@dataclass(frozen=True)
class StyleVariant:
    noise_stand_in: bool = False  # without noise images, add the official code's deterministic stand-in
    rgb_gain: float = 1.0  # equalized-lr gain of toRGB
    from_rgb_activations: int = 1  # leaky ReLUs after fromRGB
    statistics_epsilon: float = 1e-8  # inside the std of E's statistics
    norm_epsilon: float = 1e-8  # inside the std of E's instance norm
    dense_bottom: bool = True  # E's 4x4 block ends in a dense layer (else it downsamples to 2x2)
    style_gain: float = 1.0  # equalized-lr gain of E's style layers (the config's encoder_style_gain)


OURS = StyleVariant()
OFFICIAL = StyleVariant(noise_stand_in=True, rgb_gain=0.03, from_rgb_activations=2,
                        statistics_epsilon=0.0, norm_epsilon=1e-5, dense_bottom=False)


def level_channels(start_channels: int, max_channels: int, levels: int, level: int) -> int:
    return min(max_channels, start_channels * 2 ** (levels - 1 - level))


def _set_level_layer(model, name, level, layer):
    """One attribute per level's layer: tf.train.Checkpoint tracks attributes, not Keras-tracked lists."""
    setattr(model, f"{name}_{level}", layer)


def _level_layers(model, name):
    """The per-level layers as a plain tuple (not tracked again)."""
    return tuple(getattr(model, f"{name}_{level}") for level in range(model.levels))


def _build_sub_layers_on_first_call(block):
    """A block's `build`: its sub-layers build themselves when the first call reaches them. Without
    one, Keras traces the block's call() symbolically to build them before that call: 3.2 of the
    4.8 s that creating a 6-level StyleALAE's weights took (ALAE.build_all, at every load of a run)."""
    block.built = True


def _leaky(x):
    return ops.leaky_relu(x, LEAK)


class GeneratorBlock(keras.layers.Layer):
    """`stand_in_scale`: see NoiseInjection."""

    def __init__(self, channels, first, stand_in_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.first = first
        if not first:
            self.upconv = UpscaleConv2D(channels, name="upconv")
            self.blur = Blur(name="blur")
        self.noise_1 = NoiseInjection(stand_in_scale, name="noise_1")
        self.noise_2 = NoiseInjection(stand_in_scale, name="noise_2")
        self.bias_1, self.bias_2 = Bias(name="bias_1"), Bias(name="bias_2")
        self.adain_1, self.adain_2 = AdaIN(name="adain_1"), AdaIN(name="adain_2")
        self.conv = EqualizedConv2D(channels, 3, name="conv")

    def build(self, x_shape):
        _build_sub_layers_on_first_call(self)

    def call(self, x, w_1, w_2, noise_1=None, noise_2=None):
        if not self.first:
            x = self.blur(self.upconv(x))
        x = self.adain_1(_leaky(self.bias_1(self.noise_1(x, noise=noise_1))), w_1)
        x = self.conv(x)
        return self.adain_2(_leaky(self.bias_2(self.noise_2(x, noise=noise_2))), w_2)


class StyleGenerator(keras.Model):
    """G: w ([B, D], or per style input [B, 2 * levels, D]) -> images NHWC in about [-1, 1].

    `channels[level]`: feature maps of each level (4x4 first); images are `resolution` wide
    with `image_channels` channels at the top level."""

    styles_per_level = 2

    def __init__(self, resolution, channels, image_channels, latent_dim, variant=OURS, **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.levels = growing_levels(resolution)
        self.image_channels = image_channels
        self.latent_dim = latent_dim
        self.const_channels = channels[0]
        self.noise_stand_in = variant.noise_stand_in  # without noise images: the official code's stand-in
        for i in range(self.levels):
            stand_in = math.sqrt(i + 1) if variant.noise_stand_in else None
            _set_level_layer(self, "block", i, GeneratorBlock(channels[i], first=i == 0, stand_in_scale=stand_in))
            _set_level_layer(self, "to_rgb", i, EqualizedConv2D(image_channels, 1, gain=variant.rgb_gain))
            _set_level_layer(self, "rgb_bias", i, Bias())
        self.blocks, self.to_rgb, self.rgb_bias = (_level_layers(self, name) for name in ("block", "to_rgb", "rgb_bias"))

    @property
    def num_styles(self):
        return self.styles_per_level * self.levels

    def image_shape(self, level):
        side = level_resolution(level, self.resolution, self.levels)
        return (side, side, self.image_channels)

    def noise_shapes(self, level):
        """Shapes [H, W, 1] of the noise inputs used up to `level`, two per level."""
        sides = [level_resolution(i, self.resolution, self.levels) for i in range(level + 1)]
        return [(side, side, 1) for side in sides for _ in range(2)]

    def build(self, w_shape):
        self.const = self.add_weight(name="const", shape=(1, 4, 4, self.const_channels), initializer="ones")
        self.built = True

    def call(self, w, level=None, blend=None, noise=None):
        """`noise`: list of [B, H, W, 1] tensors (see noise_shapes), or None for none (the variant's stand-in)."""
        level = self.levels - 1 if level is None else level
        if len(w.shape) == 2:
            w = ops.repeat(w[:, None, :], self.num_styles, axis=1)
        batch = ops.shape(w)[0]
        x = ops.cast(ops.tile(self.const, [batch, 1, 1, 1]), self.compute_dtype)
        previous = None
        for i in range(level + 1):
            if i == level:
                previous = x
            noise_1, noise_2 = (noise[2 * i], noise[2 * i + 1]) if noise is not None else (None, None)
            x = self.blocks[i](x, w[:, 2 * i], w[:, 2 * i + 1], noise_1=noise_1, noise_2=noise_2)
        images = self.rgb_bias[level](self.to_rgb[level](x))
        if blend is not None and level > 0:
            coarse = upsample2x(self.rgb_bias[level - 1](self.to_rgb[level - 1](previous)))
            images = coarse + (images - coarse) * ops.cast(blend, images.dtype)
        return images


class EncoderBlock(keras.layers.Layer):
    """`dense`: the block ends in a dense layer on the flattened map (else blur, then conv and 2x
    downscale as one stride-2 conv); see StyleVariant for the epsilons."""

    def __init__(self, channels, out_channels, latent_dim, dense, variant=OURS, **kwargs):
        super().__init__(**kwargs)
        self.dense_bottom = dense
        self.statistics_epsilon, self.norm_epsilon = variant.statistics_epsilon, variant.norm_epsilon
        self.conv_1 = EqualizedConv2D(channels, 3, name="conv_1")
        self.bias_1 = Bias(name="bias_1")
        self.style_1 = EqualizedDense(latent_dim, gain=variant.style_gain, name="style_1")
        if dense:
            self.dense = EqualizedDense(out_channels, name="dense")
        else:
            self.blur = Blur(name="blur")
            self.conv_2 = DownscaleConv2D(out_channels, name="conv_2")
            self.bias_2 = Bias(name="bias_2")
        self.style_2 = EqualizedDense(latent_dim, gain=variant.style_gain, name="style_2")

    def build(self, x_shape):
        _build_sub_layers_on_first_call(self)

    def _statistics_and_normalize(self, x, style):
        """(style([mean; std]), instance-normalised x)."""
        mean, variance, centred = instance_moments(x)
        w = style(ops.concatenate([mean, ops.sqrt(variance + self.statistics_epsilon)], axis=-1))
        return w, instance_normalize(centred, variance, self.norm_epsilon, x.dtype)

    def call(self, x):
        """x -> (features for the next level down, this block's contribution to w)."""
        x = _leaky(self.bias_1(self.conv_1(x)))
        w, x = self._statistics_and_normalize(x, self.style_1)
        if self.dense_bottom:
            x = _leaky(self.dense(ops.reshape(x, (ops.shape(x)[0], -1))))
            return x, w + self.style_2(ops.cast(x, "float32"))
        x = _leaky(self.bias_2(self.conv_2(self.blur(x))))
        w_2, x = self._statistics_and_normalize(x, self.style_2)
        return x, w + w_2


class StyleEncoder(keras.Model):
    """E: images NHWC in [-1, 1] at the level's resolution -> w [B, D] (float32).

    `channels[level]` as in StyleGenerator; `resolution` is the top level's side;
    `bottom_channels`: the 4x4 block's output features (its dense layer's, or its 2x2 maps')."""

    def __init__(self, resolution, channels, bottom_channels, latent_dim, variant=OURS, **kwargs):
        super().__init__(**kwargs)
        self.levels = growing_levels(resolution)
        self.from_rgb_activations = variant.from_rgb_activations
        for i in range(self.levels):
            block = EncoderBlock(channels[i], channels[i - 1] if i else bottom_channels, latent_dim,
                                 dense=i == 0 and variant.dense_bottom, variant=variant)
            _set_level_layer(self, "from_rgb", i, EqualizedConv2D(channels[i], 1))
            _set_level_layer(self, "from_rgb_bias", i, Bias())
            _set_level_layer(self, "block", i, block)
        self.from_rgb, self.rgb_bias, self.blocks = (_level_layers(self, name) for name in ("from_rgb", "from_rgb_bias", "block"))

    def build(self, images_shape):
        # Sub-layers build on first use; build_all runs every level once before training.
        self.built = True

    def _from_rgb(self, level, images):
        x = self.rgb_bias[level](self.from_rgb[level](images))
        for _ in range(self.from_rgb_activations):
            x = _leaky(x)
        return x

    def call(self, images, level=None, blend=None):
        contributions = self._contributions(images, level, blend)
        w = contributions[0]
        for w_i in contributions[1:]:
            w = w + w_i
        return w

    def features(self, images, level=None, blend=None):
        """Every block's contribution to w, concatenated [B, (level + 1) * latent] (w is their sum)."""
        return ops.cast(ops.concatenate(self._contributions(images, level, blend), axis=-1), "float32")

    def _contributions(self, images, level, blend):
        """Each block's term of w, from `level` down to 4x4 (the top one faded in by `blend`)."""
        level = self.levels - 1 if level is None else level
        images = ops.cast(images, self.compute_dtype)
        x, w = self.blocks[level](self._from_rgb(level, images))
        if blend is not None and level > 0:
            blend = ops.cast(blend, x.dtype)
            coarse = self._from_rgb(level - 1, downsample2x(images))
            x = coarse + (x - coarse) * blend
            w = w * ops.cast(blend, w.dtype)
        contributions = [w]
        for i in range(level - 1, -1, -1):
            x, w_i = self.blocks[i](x)
            contributions.append(w_i)
        return contributions


def build(config, name_suffix=""):
    """(G, E, D) of a `ModelConfig`: our StyleALAE."""
    resolution, levels, channels = _levels_and_channels(config)
    return (
        StyleGenerator(resolution, channels, config.image_shape[-1], config.latent_dim, _generator_variant(OURS, config),
                       name="generator" + name_suffix),
        StyleEncoder(resolution, channels, channels[0], config.latent_dim, replace(OURS, style_gain=config.encoder_style_gain),
                     name="encoder" + name_suffix),
        latent_discriminator(config, "leaky", name="discriminator" + name_suffix),
    )


def build_official(config, name_suffix=""):
    """(G, E, D) of a `ModelConfig` as the official code's GeneratorDefault, EncoderDefault and
    MappingD (a linear D: its score is one output of the last layer, the only one we keep)."""
    resolution, levels, channels = _levels_and_channels(config)
    m = config
    bottom = min(m.max_channels, m.start_channels * 2**levels)  # EncoderDefault doubles once more below 4x4
    return (
        StyleGenerator(resolution, channels, m.image_shape[-1], m.latent_dim, _generator_variant(OFFICIAL, m),
                       name="generator" + name_suffix),
        StyleEncoder(resolution, channels, bottom, m.latent_dim, replace(OFFICIAL, style_gain=m.encoder_style_gain),
                     name="encoder" + name_suffix),
        latent_discriminator(m, "linear", name="discriminator" + name_suffix),
    )


def _generator_variant(variant, config):
    """`variant` with the config's toRGB gain, where it sets one (`model.generator_rgb_gain`)."""
    return variant if config.generator_rgb_gain is None else replace(variant, rgb_gain=config.generator_rgb_gain)


def _levels_and_channels(config):
    resolution = config.image_shape[0]
    levels = growing_levels(resolution)
    return resolution, levels, [level_channels(config.start_channels, config.max_channels, levels, level)
                                for level in range(levels)]
