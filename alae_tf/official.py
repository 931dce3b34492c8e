"""The official ALAE code's StyleALAE models (github.com/podgorskiy/ALAE, branch master) in
alae_tf terms: its config YAML -> a `Config` with the `style_official` backbone, and its
checkpoint's state dicts -> the weights of our nets.

Weights: the official layers store effective weights (its "implicit" equalized learning rate
scales them at init and in the optimizer); ours store them divided by the layer's run-time
scale, so every kernel is divided by that scale and every lr-multiplied bias by its lr
multiplier. Torch's OIHW kernels become HWIO, linear weights are transposed. From 128x128 up
the official G upscales with a transposed convolution ([in, out, kh, kw], applied mirrored):
its kernel becomes the HWIO kernel of the plain convolution after a nearest upsample, which
is what our G stores at every level (`UpscaleConv2D`). The official E counts blocks from the
top resolution down, ours levels from 4x4 up. D keeps the one output of MappingD's last layer the official code reads
(index `latent`).
"""

from __future__ import annotations

import math

import numpy as np

from alae_tf.config import Config, load_preset
from alae_tf.errors import ConfigError
from alae_tf.levels import level_resolution
from serving.contract import is_real_number

# The official defaults.py values of the MODEL keys we read.
MODEL_DEFAULTS = {
    "LAYER_COUNT": 6, "START_CHANNEL_COUNT": 64, "MAX_CHANNEL_COUNT": 512, "LATENT_SPACE_SIZE": 256,
    "DLATENT_AVG_BETA": 0.995, "TRUNCATIOM_PSI": 0.7, "TRUNCATIOM_CUTOFF": 8, "STYLE_MIXING_PROB": 0.9,
    "MAPPING_LAYERS": 5, "CHANNELS": 3, "GENERATOR": "GeneratorDefault", "ENCODER": "EncoderDefault",
    "MAPPING_D": "MappingD", "MAPPING_F": "MappingF", "Z_REGRESSION": False,
}
NETWORK_CLASSES = ("GENERATOR", "ENCODER", "MAPPING_D", "MAPPING_F")
TRAIN_DEFAULTS = {"EPOCHS_PER_LOD": 15, "TRAIN_EPOCHS": 110, "LOD_2_BATCH_8GPU": [512, 256, 128, 64, 32, 32],
                  "LEARNING_RATES": [0.002], "BASE_LEARNING_RATE": 0.0015}
DATASET_SIZE_DEFAULT = 70000
FLIP_IMAGES_DEFAULT = True  # defaults.py's DATASET.FLIP_IMAGES
# The published models: official config name -> our preset holding its settings.
PUBLISHED = {"ffhq": "official_ffhq", "celeba-hq256": "official_celeba_hq256", "bedroom": "official_bedroom",
             "celeba": "official_celeba"}
# Their DATASET.SIZE (configs/NAME.yaml): the images of one epoch, the unit the official schedule counts in.
PUBLISHED_DATASET_SIZES = {"ffhq": 60000, "celeba-hq256": 29000, "bedroom": 758260, "celeba": 182637}
D_LAYERS = 3  # MappingD: 3 linear layers, latent wide, lr x0.1
NON_FINITE = "non-finite values"  # a tensor's problem: NaN or infinity (the file is damaged, not the config wrong)
FUSED_SCALE_FROM = 128  # the official G upscales with one transposed convolution at levels this wide and wider
LR_MUL = 0.1  # MappingF and MappingD
ENCODER_STYLE_GAIN = math.sqrt(2.0)  # EncoderDefault's style_1 / style_2: ln.Linear's default gain


def config_from_official(raw: dict, origin: str) -> Config:
    """Our Config for an official config file's contents (MODEL keys, and the training schedule)."""
    if isinstance(raw, dict) and "MODEL" not in raw and "model" in raw:
        raise ConfigError(f"{origin}: an alae_tf run config, not an official ALAE config; pass the official "
                          "code's configs/NAME.yaml, whose MODEL: section describes the checkpoint")
    if not isinstance(raw, dict) or not isinstance(raw.get("MODEL"), dict):
        raise ConfigError(f"{origin}: not an official ALAE config (expected a MODEL: section)")
    model = raw["MODEL"]
    unknown = sorted(set(model) - set(MODEL_DEFAULTS))
    if unknown:
        raise ConfigError(f"{origin}: unknown MODEL key(s) {', '.join(unknown)}; known: {', '.join(MODEL_DEFAULTS)}")
    m = {**MODEL_DEFAULTS, **model}
    for key in NETWORK_CLASSES:
        if m[key] != MODEL_DEFAULTS[key]:
            raise ConfigError(f"{origin}: MODEL.{key} {m[key]!r} is not supported; only the default "
                              f"{MODEL_DEFAULTS[key]} is (the published models use it)")
    if m["Z_REGRESSION"]:
        raise ConfigError(f"{origin}: MODEL.Z_REGRESSION: true is an ablation of the official code, not supported")
    for key, default in MODEL_DEFAULTS.items():
        if type(default) in (int, float):
            _check_number(m[key], integer=type(default) is int, what=f"{origin}: MODEL.{key}")
    levels = int(m["LAYER_COUNT"])
    try:
        return _alae_config(raw, m, levels, origin)
    except (TypeError, ValueError, IndexError, AttributeError) as exc:  # TRAIN or DATASET values of the wrong kind
        raise ConfigError(f"{origin}: a TRAIN or DATASET value is not of the official config's kind ({exc})") from None


def _check_number(value, integer: bool, what: str) -> None:
    """A finite number, and an integer >= 1 if `integer` (as the official defaults of those keys are)."""
    number = is_real_number(value) and math.isfinite(value)
    if not number or (integer and (value != int(value) or value < 1)):
        raise ConfigError(f"{what} must be {'an integer >= 1' if integer else 'a finite number'}, got {value!r}")


def _alae_config(raw: dict, m: dict, levels: int, origin: str) -> Config:
    """Our Config from the checked MODEL values `m` and the file's TRAIN and DATASET sections."""
    resolution = 2 ** (levels + 1)
    train = {**TRAIN_DEFAULTS, **(raw.get("TRAIN") or {})}
    dataset = raw.get("DATASET") or {}
    dataset_size = official_dataset_size(raw)
    # lod_driver.py reads the batch sizes at min(level, len - 1): a shorter list repeats its last entry.
    # scheduler.py indexes LEARNING_RATES by level (a shorter list fails there); its last rate repeats here.
    rates = list(train["LEARNING_RATES"]) + [train["LEARNING_RATES"][-1]] * levels
    batches = list(train["LOD_2_BATCH_8GPU"]) + [train["LOD_2_BATCH_8GPU"][-1]] * levels
    return Config.from_dict({
        "preset": str(raw.get("NAME") or "official"),
        "data": {"dataset": "prepared", "random_flip": bool(dataset.get("FLIP_IMAGES", FLIP_IMAGES_DEFAULT))},
        "model": {
            "backbone": "style_official", "image_shape": [resolution, resolution, int(m["CHANNELS"])],
            "latent_dim": int(m["LATENT_SPACE_SIZE"]), "mapping_layers": int(m["MAPPING_LAYERS"]),
            "disc_layers": D_LAYERS, "disc_hidden": int(m["LATENT_SPACE_SIZE"]),
            "mapping_lr_mul": LR_MUL, "disc_lr_mul": LR_MUL,
            "start_channels": int(m["START_CHANNEL_COUNT"]), "max_channels": int(m["MAX_CHANNEL_COUNT"]),
            "encoder_style_gain": ENCODER_STYLE_GAIN,
        },
        "train": {
            "epochs": int(train["TRAIN_EPOCHS"]), "learning_rate": float(train["BASE_LEARNING_RATE"]),
            "images_per_level": int(train["EPOCHS_PER_LOD"]) * dataset_size,
            "level_batch_sizes": [int(b) for b in batches[:levels]],
            "level_learning_rates": [float(r) for r in rates[:levels]],
            "ema_nets": ["mapping", "generator", "encoder", "discriminator"],
            "style_mixing_prob": float(m["STYLE_MIXING_PROB"]), "truncation_psi": float(m["TRUNCATIOM_PSI"]),
            "truncation_cutoff": int(m["TRUNCATIOM_CUTOFF"]), "w_avg_beta": float(m["DLATENT_AVG_BETA"]),
        },
    }, origin)


def official_dataset_size(raw: dict) -> int:
    """An official config file's DATASET.SIZE: the images of one epoch of its schedule."""
    return int((raw.get("DATASET") or {}).get("SIZE", DATASET_SIZE_DEFAULT))


def published_config(name: str) -> Config:
    """The settings of a published model by its official name (ffhq, celeba-hq256, bedroom, celeba)."""
    if name not in PUBLISHED:
        raise ConfigError(f"unknown published model {name!r}; known: {', '.join(PUBLISHED)} (or pass an official config file)")
    return load_preset(PUBLISHED[name])


# --- weights -----------------------------------------------------------------------------------


class WeightPlan:
    """(our variable, official tensor name, array transform) pairs for one net, checked all at once."""

    def __init__(self, net_name: str, state: dict):
        self.net_name, self.state = net_name, state
        self.assignments, self.problems, self.used = [], [], set()

    def take(self, variable, name, transform=lambda a: a, source_shape=None):
        """Plan `variable <- transform(state[name])`; `source_shape`: the official shape expected."""
        self.used.add(name)
        tensor = self.state.get(name)
        if tensor is None:
            self.problems.append(f"{self.net_name}.{name}: missing")
            return
        if source_shape is not None and tuple(tensor.shape) != tuple(source_shape):
            self.problems.append(f"{self.net_name}.{name}: shape {list(tensor.shape)}, this config needs {list(source_shape)}")
            return
        self.assignments.append((variable, name, tensor, transform))

    def unused(self, ignored_suffixes=(".blur.weight",)):
        """Official tensors nothing reads (blur kernels are constants: not weights)."""
        return [f"{self.net_name}.{name}: not part of this architecture" for name in self.state
                if name not in self.used and not name.endswith(ignored_suffixes)]

    def arrays(self):
        """(variable, array) for every planned assignment; non-finite values are a problem."""
        result = []
        for variable, name, tensor, transform in self.assignments:
            array = np.asarray(transform(tensor.array()), np.float32)
            if tuple(array.shape) != tuple(variable.shape):
                self.problems.append(f"{self.net_name}.{name}: gives {list(array.shape)}, our {variable.path} is {list(variable.shape)}")
            elif not np.isfinite(array).all():
                self.problems.append(f"{self.net_name}.{name}: {NON_FINITE}")
            else:
                result.append((variable, array))
        return result


def _conv(layer):
    """Torch OIHW -> HWIO divided by the layer's run-time scale."""
    return lambda a: a.transpose(2, 3, 1, 0) / layer.runtime_scale


def _transposed_conv(layer):
    """A transposed convolution's torch [in, out, kh, kw] -> the HWIO kernel it applies (mirrored),
    divided by the layer's run-time scale."""
    return lambda a: a.transpose(2, 3, 0, 1)[::-1, ::-1] / layer.runtime_scale


def _dense(layer, rows=None):
    """[out, in] -> [in, out] (optionally only output rows `rows`), divided by the run-time scale."""
    return lambda a: (a if rows is None else a[rows]).T / layer.runtime_scale


def _dense_bias(layer, rows=None):
    return lambda a: (a if rows is None else a[rows]) / layer.lr_mul


def _channels(a):
    return a.reshape(-1)


def _oihw(out_channels, in_channels, kernel):
    return (out_channels, in_channels, kernel, kernel)


def plan_generator(generator, state) -> WeightPlan:
    plan = WeightPlan("generator", state)
    plan.take(generator.const, "const", lambda a: a.transpose(0, 2, 3, 1), (1, generator.const_channels, 4, 4))
    for i, block in enumerate(generator.blocks):
        prefix = f"decode_block.{i}"
        if not block.first:
            upconv = block.upconv
            in_channels, out_channels = upconv.kernel.shape[2:]
            if level_resolution(i, generator.resolution, generator.levels) >= FUSED_SCALE_FROM:
                plan.take(upconv.kernel, f"{prefix}.conv_1.weight", _transposed_conv(upconv), (in_channels, out_channels, 3, 3))
            else:
                plan.take(upconv.kernel, f"{prefix}.conv_1.weight", _conv(upconv), _oihw(out_channels, in_channels, 3))
        channels = block.conv.kernel.shape[-1]
        plan.take(block.conv.kernel, f"{prefix}.conv_2.weight", _conv(block.conv), _oihw(channels, channels, 3))
        for n, noise, bias, adain in ((1, block.noise_1, block.bias_1, block.adain_1), (2, block.noise_2, block.bias_2, block.adain_2)):
            plan.take(noise.weight, f"{prefix}.noise_weight_{n}", _channels, (1, channels, 1, 1))
            plan.take(bias.bias, f"{prefix}.bias_{n}", _channels, (1, channels, 1, 1))
            style = adain.style
            plan.take(style.kernel, f"{prefix}.style_{n}.weight", _dense(style), (2 * channels, style.kernel.shape[0]))
            plan.take(style.bias, f"{prefix}.style_{n}.bias", _dense_bias(style), (2 * channels,))
        to_rgb, rgb_bias = generator.to_rgb[i], generator.rgb_bias[i]
        plan.take(to_rgb.kernel, f"to_rgb.{i}.to_rgb.weight", _conv(to_rgb), _oihw(to_rgb.filters, channels, 1))
        plan.take(rgb_bias.bias, f"to_rgb.{i}.to_rgb.bias", source_shape=(to_rgb.filters,))
    return plan


def plan_encoder(encoder, state) -> WeightPlan:
    plan = WeightPlan("encoder", state)
    for level, block in enumerate(encoder.blocks):
        j = encoder.levels - 1 - level  # official blocks count from the top resolution down
        from_rgb, rgb_bias = encoder.from_rgb[level], encoder.rgb_bias[level]
        image_channels, channels = from_rgb.kernel.shape[2:]
        plan.take(from_rgb.kernel, f"from_rgb.{j}.from_rgb.weight", _conv(from_rgb), _oihw(channels, image_channels, 1))
        plan.take(rgb_bias.bias, f"from_rgb.{j}.from_rgb.bias", source_shape=(channels,))
        prefix = f"encode_block.{j}"
        plan.take(block.conv_1.kernel, f"{prefix}.conv_1.weight", _conv(block.conv_1), _oihw(channels, channels, 3))
        plan.take(block.bias_1.bias, f"{prefix}.bias_1", _channels, (1, channels, 1, 1))
        out_channels = block.conv_2.kernel.shape[-1]  # EncoderDefault: every block ends in conv_2
        plan.take(block.conv_2.kernel, f"{prefix}.conv_2.weight", _conv(block.conv_2), _oihw(out_channels, channels, 3))
        plan.take(block.bias_2.bias, f"{prefix}.bias_2", _channels, (1, out_channels, 1, 1))
        for n, style, features in ((1, block.style_1, channels), (2, block.style_2, out_channels)):
            plan.take(style.kernel, f"{prefix}.style_{n}.weight", _dense(style), (style.units, 2 * features))
            plan.take(style.bias, f"{prefix}.style_{n}.bias", _dense_bias(style), (style.units,))
    return plan


def _dense_layers(net):
    return [layer for layer in net.layers if hasattr(layer, "runtime_scale")]


def plan_mapping(mapping, state) -> WeightPlan:
    """MappingF: map_blocks.i.fc (Linear + leaky ReLU); F's running mean comes from dlatent_avg."""
    plan = WeightPlan("mapping", state)
    for i, layer in enumerate(_dense_layers(mapping.body)):
        plan.take(layer.kernel, f"map_blocks.{i}.fc.weight", _dense(layer), tuple(layer.kernel.shape)[::-1])
        plan.take(layer.bias, f"map_blocks.{i}.fc.bias", _dense_bias(layer), (layer.units,))
    return plan


def plan_discriminator(discriminator, state, latent_dim) -> WeightPlan:
    """MappingD: map_blocks.i (Linear, no activation); the last has 2 x latent outputs, the score is output `latent`."""
    plan = WeightPlan("discriminator", state)
    layers = _dense_layers(discriminator)
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        rows = slice(latent_dim, latent_dim + 1) if last else None
        out = 2 * latent_dim if last else layer.units
        plan.take(layer.kernel, f"map_blocks.{i}.weight", _dense(layer, rows), (out, layer.kernel.shape[0]))
        plan.take(layer.bias, f"map_blocks.{i}.bias", _dense_bias(layer, rows), (out,))
    return plan


def plan_w_avg(mapping, dlatent_avg, num_styles) -> WeightPlan:
    """dlatent_avg.buff holds one row per style input, all equal (w is the same on every input)."""
    plan = WeightPlan("dlatent_avg", dlatent_avg)

    def first_row(buff):
        if not np.allclose(buff, buff[:1], rtol=1e-5, atol=1e-6):
            plan.problems.append("dlatent_avg.buff: its rows differ; alae_tf keeps one running mean of w")
        return buff[0]

    plan.take(mapping.w_avg, "buff", first_row, (num_styles, mapping.latent_dim))
    return plan


def plan_networks(networks, states: dict, latent_dim) -> list[WeightPlan]:
    """One plan per net: states = {"generator", "encoder", "mapping", "discriminator", "dlatent_avg": state dict}."""
    return [
        plan_generator(networks.generator, states["generator"]),
        plan_encoder(networks.encoder, states["encoder"]),
        plan_mapping(networks.mapping, states["mapping"]),
        plan_discriminator(networks.discriminator, states["discriminator"], latent_dim),
        plan_w_avg(networks.mapping, states["dlatent_avg"], networks.generator.num_styles),
    ]
