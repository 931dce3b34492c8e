"""Typed run configuration: a preset YAML file, plus command-line overrides, resolved once.

The resolved config is written to `OUT/config.yaml`; a resumed run reads it back, so a run
directory always says exactly how it was trained.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alae_tf.atomic_file import write_text_atomically
from alae_tf.errors import ConfigError
from alae_tf.levels import growing_levels

PRESET_DIR = Path(__file__).parent / "presets"
# A config file is a few kB; these bound what a hostile one can cost (an alias bomb expands
# exponentially when its values are walked).
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_ALIASES = 100
# Written into every run's config.yaml. Runs without it (format 1) predate the backbone protocol:
# their checkpoints name other objects and do not load.
RUN_FORMAT = 2

# Upper bounds far above every preset, so a typo fails with one line rather than exhausting memory.
MAX_IMAGE_SIDE = 2048
MAX_LATENT_DIM = 4096  # also disc_hidden (the official models use 512)
MAX_HIDDEN_DIM = 16384
MAX_CHANNELS = 4096
MAX_DEPTH = 64  # mapping_layers, disc_layers
MAX_BATCH_SIZE = 65536
MAX_LEARNING_RATE = 1.0

# Choice lists, defined once: validation, the data loaders and every CLI's argparse read them.
DATASETS = ("mnist", "fashion_mnist", "folder", "prepared")
MNIST_SOURCES = ("auto", "package", "idx", "npz", "tfds")
PRECISIONS = ("none", "bf16", "fp16")
JIT_AUTO = "auto"  # train.jit: XLA where it was measured faster (resolve_jit)
# Step I / step II loss pairs (alae_tf.losses): the paper's softplus (non-saturating), the original
# minimax, LSGAN, hinge, WGAN, f-GAN with the KL, reverse KL, Pearson chi^2, squared Hellinger
# and Jensen-Shannon divergences, and the energy losses of EBGAN and BEGAN (ENERGY_LOSSES: D is
# an autoencoder on w, its score the reconstruction error).
ENERGY_LOSSES = ("ebgan", "began")
ADVERSARIAL_LOSSES = ("softplus", "minimax", "least_squares", "hinge", "wasserstein",
                      "f_kl", "f_reverse_kl", "f_pearson", "f_hellinger", "f_js", *ENERGY_LOSSES)
# Step I's gradient penalty on D(E(.)): R1 at the reals (the paper's), R2 at the fakes (both
# (r1_gamma / 2) ||grad||^2), WGAN-GP at real/fake interpolates and DRAGAN between the reals and
# perturbed reals (both gp_weight (||grad|| - 1)^2), or none.
GRADIENT_PENALTIES = ("r1", "r2", "wgan_gp", "dragan", "none")
NETS = ("mapping", "generator", "encoder", "discriminator")
# What the trainer trains (alae_tf.model_kinds): ALAE, or a baseline of the paper's MNIST comparison
# (alae_tf.baselines) on the MLP backbone's nets: autoencoders with l1 / l2 reconstruction, VAE,
# adversarial autoencoder, BiGAN (ALI), VAE-GAN and adversarial variational Bayes.
MODEL_KINDS = ("alae", "ae_l1", "ae_l2", "vae", "aae", "bigan", "vaegan", "avb")
# Baselines whose objective has no adversarial pair to choose (AVB's T must be the logistic one:
# only then does it estimate log q(z|x) - log p(z)).
FIXED_LOSS_KINDS = ("ae_l1", "ae_l2", "vae", "avb")
# Plain autoencoders: nothing trains their G on z ~ N(0, I), so their "samples" are no model's.
PRIORLESS_KINDS = ("ae_l1", "ae_l2")


@dataclass(frozen=True)
class Backbone:
    """What the rest of the library needs to know of a backbone beyond its networks (alae_tf.nets)."""

    grows: bool  # progressive levels 4x4 .. R (else one level)
    xla_on_cpu: bool  # `jit: auto` turns XLA on for it in float32 on one CPU device (measured faster there)
    baselines: bool  # the baselines (model.kind other than alae) are built on it
    converted: bool  # what alae_tf.convert writes from official checkpoints


# Backbone name -> its facts; its networks are built by alae_tf.nets (the same names). The _official
# ones compute what the official code's networks compute: mlp_official its mnist_ref MLP (preset
# mnist_official), style_official its StyleALAE, for its checkpoints (alae_tf.convert).
BACKBONES = {
    "mlp": Backbone(grows=False, xla_on_cpu=True, baselines=True, converted=False),
    "mlp_official": Backbone(grows=False, xla_on_cpu=True, baselines=False, converted=False),
    "style": Backbone(grows=True, xla_on_cpu=False, baselines=False, converted=False),
    "style_official": Backbone(grows=True, xla_on_cpu=False, baselines=False, converted=True),
}


@dataclass
class DataConfig:
    dataset: str = "mnist"  # one of DATASETS: folder = image files, prepared = python -m alae_tf.data.prepare
    source: str = "auto"  # MNIST: one of MNIST_SOURCES (see alae_tf.data.mnist)
    path: str | None = None
    test_count: int | None = None  # folder / prepared: held-out images (None: the source's default)
    # Each training image flipped left-right with probability 1/2, drawn per image and step (the
    # official code's DATASET.FLIP_IMAGES; prepare --mirror doubles the set with flipped copies instead).
    random_flip: bool = False


@dataclass
class ModelConfig:
    kind: str = "alae"  # one of MODEL_KINDS
    backbone: str = "mlp"
    image_shape: list[int] = field(default_factory=lambda: [28, 28, 1])
    latent_dim: int = 50
    mapping_layers: int = 6  # depth of F; 0 makes F the identity (w = z)
    hidden_dim: int = 1024  # width of the E and G hidden layers
    disc_layers: int = 3
    disc_hidden: int = 50
    mapping_lr_mul: float = 0.1
    disc_lr_mul: float = 0.1
    # D on w: "linear" (no activations: it scores w along one direction) or "leaky" (leaky ReLU
    # between its layers); None: the backbone's own (leaky for `style` and the AAE, linear for the
    # MLP and `style_official`, as the official code's).
    disc_kind: str | None = None
    disc_code_dim: int | None = None  # the energy losses' D: its autoencoder's code width (None: latent_dim // 2)
    # Style backbone only: channels per level = min(max_channels, start_channels * 2^(levels - 1 - level)).
    start_channels: int = 64
    max_channels: int = 256
    # Equalized-lr gain of E's style layers ([mean; std] -> w): 1 is ours; convert writes the official
    # code's sqrt(2) (a run converted before 2026-12-05 has 1: same outputs, Adam steps 1/sqrt(2) of the official).
    encoder_style_gain: float = 1.0
    # Equalized-lr gain of G's toRGB layers; None: the backbone's own (1 for `style`, the official
    # 0.03 for `style_official`). 0.03 starts images near grey and moves toRGB 33x slower (its
    # effect on a folder of discs: README, "Is the collapse ours?").
    generator_rgb_gain: float | None = None

    @property
    def energy_code_dim(self) -> int:
        return self.disc_code_dim if self.disc_code_dim is not None else max(1, self.latent_dim // 2)

    @property
    def levels(self) -> int:
        """Resolution levels: 4, 8, ..., R for a growing backbone, else one."""
        backbone = BACKBONES.get(self.backbone)
        return growing_levels(self.image_shape[0]) if backbone and backbone.grows else 1


@dataclass
class TrainConfig:
    batch_size: int = 128
    epochs: int | None = 400  # used when steps is None
    steps: int | None = None
    learning_rate: float = 0.002
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    adam_epsilon: float = 1e-8
    r1_gamma: float = 10.0
    adversarial_loss: str = "softplus"  # one of ADVERSARIAL_LOSSES
    gradient_penalty: str = "r1"  # one of GRADIENT_PENALTIES
    gp_weight: float = 10.0  # lambda of wgan_gp and dragan
    weight_clip: float = 0.0  # > 0: E's and D's weights as used clipped to [-c, c] after step I (WGAN; step III moves E again)
    energy_margin: float = 1.0  # ebgan: the margin m of D's hinge on the fakes' energy
    pullaway_weight: float = 0.0  # ebgan: weight of the pulling-away term in G's loss (EBGAN-PT; the paper's 0.1)
    began_gamma: float = 0.5  # began: the diversity ratio, E[energy of fakes] / E[energy of reals] at equilibrium
    began_lambda_k: float = 0.001  # began: the learning rate of the equilibrium variable k
    ema_half_life_images: float = 10000.0
    # Nets with an EMA copy, used for sampling, encoding and export (the others are used live).
    # The MLP reference averages F and G; StyleALAE all four.
    ema_nets: list[str] = field(default_factory=lambda: ["mapping", "generator"])
    seed: int = 0
    mixed_precision: str = "none"  # none | bf16 | fp16 (fp16 with dynamic loss scaling)
    jit: bool | str = False  # true, false or auto (JIT_AUTO); the MLP presets say auto
    deterministic: bool = False  # TensorFlow's deterministic kernels (bit-reproducible runs; needs oneDNN off)
    checkpoint_every: int = 1000
    sample_every: int = 1000
    log_every: int = 100
    # Levels (model.levels): images shown per level before the next one fades in, and one entry
    # per level (4, 8, 16, ...) of batch size and learning rate; empty lists: batch_size and
    # learning_rate at every level.
    images_per_level: int = 600000
    level_batch_sizes: list[int] = field(default_factory=list)
    level_learning_rates: list[float] = field(default_factory=list)
    style_mixing_prob: float = 0.0  # steps I and II; no effect on a generator with one style input
    truncation_psi: float = 1.0  # for sample grids (EMA model); FID etc. use no truncation
    truncation_cutoff: int = 8  # truncation applies to the first N style inputs
    w_avg_beta: float = 0.995  # F's running mean of w, the centre of truncation

    def level_batch_size(self, level: int) -> int:
        return self.level_batch_sizes[level] if self.level_batch_sizes else self.batch_size

    def level_learning_rate(self, level: int) -> float:
        return self.level_learning_rates[level] if self.level_learning_rates else self.learning_rate


@dataclass
class Config:
    preset: str = "mnist"
    format: int = RUN_FORMAT
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, origin: str) -> "Config":
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        _reject_unknown(raw, sections, origin)
        kwargs = {}
        for name, value in raw.items():
            if name == "preset":
                if not isinstance(value, str):
                    raise ConfigError(f"{origin}: preset must be a name, got {type(value).__name__}")
                kwargs[name] = value
                continue
            if name == "format":
                if value != RUN_FORMAT:
                    raise ConfigError(f"{origin}: format {value!r} is not this version's run format ({RUN_FORMAT})")
                kwargs[name] = value
                continue
            section_cls = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[name]
            kwargs[name] = _build_section(section_cls, value or {}, f"{origin}: {name}")
        config = cls(**kwargs)
        config.validate(origin)
        return config

    def validate(self, origin: str = "config") -> None:
        t, m = self.train, self.model
        self._validate_finite(origin)
        positive = {
            "train.batch_size": t.batch_size,
            "train.learning_rate": t.learning_rate,
            "train.ema_half_life_images": t.ema_half_life_images,
            "train.checkpoint_every": t.checkpoint_every,
            "train.sample_every": t.sample_every,
            "train.log_every": t.log_every,
            "model.latent_dim": m.latent_dim,
            "model.hidden_dim": m.hidden_dim,
            "model.disc_layers": m.disc_layers,
            "model.disc_hidden": m.disc_hidden,
            "model.encoder_style_gain": m.encoder_style_gain,
        }
        if m.disc_kind not in (None, "linear", "leaky"):
            raise ConfigError(f"{origin}: model.disc_kind must be linear or leaky (or null: the backbone's own), "
                              f"got {m.disc_kind!r}")
        if m.generator_rgb_gain is not None:
            positive["model.generator_rgb_gain"] = m.generator_rgb_gain
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{origin}: {name} must be positive, got {value}")
        at_most = {
            "train.batch_size": (t.batch_size, MAX_BATCH_SIZE),
            "train.learning_rate": (t.learning_rate, MAX_LEARNING_RATE),
            "model.latent_dim": (m.latent_dim, MAX_LATENT_DIM),
            "model.hidden_dim": (m.hidden_dim, MAX_HIDDEN_DIM),
            "model.disc_hidden": (m.disc_hidden, MAX_LATENT_DIM),
            "model.start_channels": (m.start_channels, MAX_CHANNELS),
            "model.max_channels": (m.max_channels, MAX_CHANNELS),
            "model.mapping_layers": (m.mapping_layers, MAX_DEPTH),
            "model.disc_layers": (m.disc_layers, MAX_DEPTH),
        }
        for name, (value, limit) in at_most.items():
            if value > limit:
                raise ConfigError(f"{origin}: {name} must be at most {limit}, got {value}")
        if not 0 <= t.seed < 2**31:
            raise ConfigError(f"{origin}: train.seed must lie in [0, 2^31), got {t.seed}")
        if self.data.test_count is not None and self.data.test_count < 0:
            raise ConfigError(f"{origin}: data.test_count must be >= 0, got {self.data.test_count}")
        if t.r1_gamma < 0:
            raise ConfigError(f"{origin}: train.r1_gamma must be >= 0, got {t.r1_gamma}")
        for name, value in (("train.adam_epsilon", t.adam_epsilon), ("model.mapping_lr_mul", m.mapping_lr_mul),
                            ("model.disc_lr_mul", m.disc_lr_mul)):
            if value <= 0:
                raise ConfigError(f"{origin}: {name} must be > 0, got {value}")
        if not 0.0 <= t.w_avg_beta < 1.0:
            raise ConfigError(f"{origin}: train.w_avg_beta must lie in [0, 1), got {t.w_avg_beta}")
        if t.truncation_cutoff < 0:
            raise ConfigError(f"{origin}: train.truncation_cutoff must be >= 0, got {t.truncation_cutoff}")
        if t.steps is None and t.epochs is None:
            raise ConfigError(f"{origin}: set train.steps or train.epochs")
        for name in ("steps", "epochs"):
            value = getattr(t, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{origin}: train.{name} must be positive, got {value}")
        if m.mapping_layers < 0:
            raise ConfigError(f"{origin}: model.mapping_layers must be >= 0, got {m.mapping_layers}")
        if t.adversarial_loss not in ADVERSARIAL_LOSSES:
            raise ConfigError(f"{origin}: train.adversarial_loss must be one of {', '.join(ADVERSARIAL_LOSSES)}, "
                              f"got {t.adversarial_loss!r}")
        if t.gradient_penalty not in GRADIENT_PENALTIES:
            raise ConfigError(f"{origin}: train.gradient_penalty must be one of {', '.join(GRADIENT_PENALTIES)}, "
                              f"got {t.gradient_penalty!r}")
        if t.gp_weight < 0 or t.weight_clip < 0:
            raise ConfigError(f"{origin}: train.gp_weight and train.weight_clip must be >= 0")
        if m.backbone not in BACKBONES:  # before the kind's checks, which look it up
            raise ConfigError(f"{origin}: model.backbone must be one of {', '.join(BACKBONES)}, got {m.backbone!r}")
        self._validate_kind(origin)
        self._validate_energy(origin)
        if t.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"{origin}: train.mixed_precision must be one of {', '.join(PRECISIONS)}, got {t.mixed_precision!r}"
            )
        if self.data.dataset not in DATASETS:
            raise ConfigError(f"{origin}: data.dataset must be one of {', '.join(DATASETS)}, got {self.data.dataset!r}")
        if self.data.source not in MNIST_SOURCES:
            raise ConfigError(f"{origin}: data.source must be one of {', '.join(MNIST_SOURCES)}, got {self.data.source!r}")
        unknown_nets = sorted(set(t.ema_nets) - set(NETS))
        if unknown_nets or not isinstance(t.ema_nets, list):
            raise ConfigError(f"{origin}: train.ema_nets takes names from {', '.join(NETS)}, got {t.ema_nets}")
        self._validate_shape(origin)
        self._validate_levels(origin)
        if not 0.0 <= t.adam_beta1 < 1.0 or not 0.0 <= t.adam_beta2 < 1.0:
            raise ConfigError(f"{origin}: Adam betas must lie in [0, 1)")
        if not 0.0 <= t.style_mixing_prob <= 1.0:
            raise ConfigError(f"{origin}: train.style_mixing_prob must lie in [0, 1], got {t.style_mixing_prob}")

    def ignored_settings(self) -> list[str]:
        """Settings changed from their defaults that this run's backbone, loss or penalty never
        reads (a newcomer's style_mixing_prob on the MLP trained as if unset)."""
        t, m = self.train, self.model
        style = BACKBONES[m.backbone].grows
        unread = {
            "data.source": self.data.dataset in ("folder", "prepared"),  # where MNIST is read from
            "model.start_channels": not style, "model.max_channels": not style, "model.hidden_dim": style,
            "model.encoder_style_gain": not style, "model.generator_rgb_gain": not style,
            "train.style_mixing_prob": not style,  # the MLP's generator has one style input
            "train.images_per_level": m.levels == 1,
            "train.r1_gamma": t.gradient_penalty not in ("r1", "r2"),
            "train.gp_weight": t.gradient_penalty not in ("wgan_gp", "dragan"),
            "train.energy_margin": t.adversarial_loss != "ebgan",
            "train.began_gamma": t.adversarial_loss != "began", "train.began_lambda_k": t.adversarial_loss != "began",
            "model.disc_code_dim": t.adversarial_loss not in ENERGY_LOSSES,
            "model.disc_kind": t.adversarial_loss in ENERGY_LOSSES,  # their D is an autoencoder on w
        }
        if m.kind != "alae":  # the baselines: F is the identity, no EMA copies, D on w only in the AAE
            unread.update({"model.mapping_layers": True, "model.mapping_lr_mul": True, "train.ema_half_life_images": True,
                           **{f"model.{key}": m.kind != "aae" for key in ("disc_layers", "disc_hidden", "disc_lr_mul", "disc_kind")}})
        defaults, ignored = {"data": DataConfig(), "model": ModelConfig(), "train": TrainConfig()}, []
        for name, unused in unread.items():
            section, key = name.split(".")
            if unused and getattr(getattr(self, section), key) != getattr(defaults[section], key):
                ignored.append(name)
        return ignored

    def _validate_finite(self, origin: str) -> None:
        """Every float setting a finite number (YAML's .nan and .inf parse as floats, and a NaN
        passes any `<=` check)."""
        for section in ("data", "model", "train"):
            for name, value in dataclasses.asdict(getattr(self, section)).items():
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                    raise ConfigError(f"{origin}: {section}.{name} must be finite, got {value}")

    def _validate_energy(self, origin: str) -> None:
        t, m = self.train, self.model
        if t.energy_margin <= 0:
            raise ConfigError(f"{origin}: train.energy_margin must be > 0, got {t.energy_margin}")
        if t.pullaway_weight < 0:
            raise ConfigError(f"{origin}: train.pullaway_weight must be >= 0, got {t.pullaway_weight}")
        if t.pullaway_weight > 0 and t.adversarial_loss != "ebgan":
            raise ConfigError(f"{origin}: train.pullaway_weight is EBGAN's term; it needs train.adversarial_loss: "
                              f"ebgan, got {t.adversarial_loss!r}")
        if t.pullaway_weight > 0 and t.batch_size < 2:
            raise ConfigError(f"{origin}: the pulling-away term compares pairs of fakes: train.batch_size must be >= 2")
        if not 0.0 < t.began_gamma <= 1.0:
            raise ConfigError(f"{origin}: train.began_gamma must lie in (0, 1], got {t.began_gamma}")
        if not 0.0 <= t.began_lambda_k <= 1.0:
            raise ConfigError(f"{origin}: train.began_lambda_k must lie in [0, 1], got {t.began_lambda_k}")
        if m.disc_code_dim is not None and not 1 <= m.disc_code_dim <= MAX_LATENT_DIM:
            raise ConfigError(f"{origin}: model.disc_code_dim must lie in [1, {MAX_LATENT_DIM}], got {m.disc_code_dim}")

    def _validate_kind(self, origin: str) -> None:
        t, kind = self.train, self.model.kind
        if kind not in MODEL_KINDS:
            raise ConfigError(f"{origin}: model.kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
        if kind == "alae":
            if t.adversarial_loss == "wasserstein" and t.gradient_penalty == "none" and t.weight_clip == 0:
                raise ConfigError(f"{origin}: train.adversarial_loss wasserstein needs a constraint on D: "
                                  "train.gradient_penalty (wgan_gp, or r1 as the loss ablation ran it) or train.weight_clip")
            return
        if not BACKBONES[self.model.backbone].baselines:
            on = ", ".join(name for name, backbone in BACKBONES.items() if backbone.baselines)
            raise ConfigError(f"{origin}: the {kind} baseline is built on the {on} backbone, got model.backbone "
                              f"{self.model.backbone!r}")
        if t.ema_nets or t.gradient_penalty != "none" or t.weight_clip > 0 or t.style_mixing_prob > 0 or t.pullaway_weight > 0:
            raise ConfigError(f"{origin}: train.ema_nets, gradient_penalty, weight_clip, style_mixing_prob and "
                              f"pullaway_weight are ALAE's; the {kind} baseline needs ema_nets: [], gradient_penalty: "
                              "none, weight_clip: 0, style_mixing_prob: 0 and pullaway_weight: 0")
        if t.adversarial_loss in ENERGY_LOSSES:
            raise ConfigError(f"{origin}: train.adversarial_loss {t.adversarial_loss} is ALAE's (its D is an "
                              f"autoencoder on w), not the {kind} baseline's")
        if t.adversarial_loss == "wasserstein":
            raise ConfigError(f"{origin}: train.adversarial_loss wasserstein needs a Lipschitz constraint on D "
                              f"(a gradient penalty or weight clipping), which the {kind} baseline has not; "
                              "choose another loss (hinge is the closest)")
        if kind in FIXED_LOSS_KINDS and t.adversarial_loss != "softplus":
            raise ConfigError(f"{origin}: the {kind} baseline has no adversarial loss to choose; "
                              "train.adversarial_loss must stay softplus")

    def _validate_shape(self, origin: str) -> None:
        m = self.model
        height, width, channels = (list(m.image_shape) + [0, 0, 0])[:3]
        if len(m.image_shape) != 3 or height != width or not 4 <= height <= MAX_IMAGE_SIDE or channels not in (1, 3):
            raise ConfigError(f"{origin}: model.image_shape must be [R, R, 1 or 3] with 4 <= R <= {MAX_IMAGE_SIDE}, "
                              f"got {m.image_shape}")
        if BACKBONES[m.backbone].grows and (height < 8 or height & (height - 1)):
            raise ConfigError(f"{origin}: the {m.backbone} backbone grows from 4x4 by doubling: model.image_shape "
                              f"needs R a power of two >= 8, got {m.image_shape}")
        if m.start_channels <= 0 or m.max_channels <= 0:
            raise ConfigError(f"{origin}: model.start_channels and model.max_channels must be positive")

    def _validate_levels(self, origin: str) -> None:
        t, levels = self.train, self.model.levels
        for name in ("level_batch_sizes", "level_learning_rates"):
            values = getattr(t, name)
            limit = MAX_BATCH_SIZE if name == "level_batch_sizes" else MAX_LEARNING_RATE
            if values and (len(values) != levels or min(values) <= 0 or max(values) > limit):
                raise ConfigError(f"{origin}: train.{name} needs {levels} positive entries up to {limit} (one per resolution level), "
                                  f"or none to use the single value at every level; got {values}")
        if levels > 1 and t.images_per_level <= 0:
            raise ConfigError(f"{origin}: train.images_per_level must be positive")

    @property
    def levels(self) -> int:
        return self.model.levels


def resolve_jit(config: Config, distributed: bool, gpu: bool) -> bool:
    """train.jit with auto resolved (`auto_jit`). XLA is refused with train.deterministic: Keras
    compiles without it under TensorFlow's deterministic ops (it would run without XLA, unsaid)."""
    if config.train.jit is True and config.train.deterministic:
        raise ConfigError("XLA (--jit, or jit: true in a resumed run's config.yaml) and --deterministic do not go "
                          "together (Keras compiles no XLA under TensorFlow's deterministic ops); pass --no-jit")
    return auto_jit(config, distributed, gpu) if config.train.jit == JIT_AUTO else config.train.jit


def auto_jit(config: Config, distributed: bool, gpu: bool) -> bool:
    """What `jit: auto` chooses: XLA for the MLP backbone in float32 on one CPU device, where it
    beat TensorFlow's own kernels on both CPU kinds measured (README, Results: 1.4x on AMD, 1.2x on
    Intel); off for the convolutional backbones (0.71x on CPU), mixed precision (XLA's CPU bf16
    path was slower), distribution strategies (XLA is refused there on CPUs), GPUs (not measured) and
    deterministic runs (`resolve_jit`)."""
    return (BACKBONES[config.model.backbone].xla_on_cpu and config.train.mixed_precision == "none" and not distributed
            and not gpu and not config.train.deterministic)


def deterministic_problem(environ) -> str | None:
    """Why train.deterministic cannot run in a process started with `environ`, or None. oneDNN's
    kernels stay non-deterministic under TensorFlow's switch, and whether they run is fixed when
    TensorFlow is imported (TF_ENABLE_ONEDNN_OPTS, which importing alae_tf sets to 1 unless set)."""
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
        return None
    return ("train.deterministic (--deterministic, or a run trained with it) needs TensorFlow's oneDNN kernels off, "
            "and that is decided when TensorFlow starts: run it as TF_ENABLE_ONEDNN_OPTS=0 python -m alae_tf.train ...")


DEFAULT_PRESET = "mnist"  # python -m alae_tf.train without --preset or --config


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> Config:
    return load_config_file(preset_file(name))


def preset_file(name: str) -> Path:
    """A preset's file, found by name only (--config takes paths)."""
    if name not in available_presets():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(available_presets())} "
                          "(pass a config file with --config)")
    return PRESET_DIR / f"{name}.yaml"


def load_config_file(path: str | Path) -> Config:
    return Config.from_dict(read_yaml_file(path), str(path))


def load_training_config_file(path: str | Path, default_preset: str) -> Config:
    """A --config file read over the preset its `preset:` names (`default_preset` when it names
    none): `preset: tiny_style` and the keys to change is that preset with those changes, as a full
    copy of a preset file is. A name that is no preset (a renamed copy) is read alone: each key it
    leaves out takes its built-in default."""
    raw = read_yaml_file(path)
    name = raw.get("preset", default_preset) if isinstance(raw, dict) else None
    if isinstance(name, str) and name in available_presets():
        merged = read_yaml_file(preset_file(name))
        for key, value in raw.items():  # a section's keys one by one; anything else (a bad value too) as given
            section = isinstance(merged.get(key), dict) and isinstance(value, dict | None)
            merged[key] = {**merged[key], **(value or {})} if section else value
        raw = merged
    elif isinstance(name, str) and (close := difflib.get_close_matches(name, available_presets(), n=1, cutoff=0.8)):
        print(f"warning: {path}: preset {name} is no preset (did you mean {close[0]}?); the file is read alone, every "
              "setting it leaves out at its built-in default (the MNIST MLP's)", file=sys.stderr)
    return Config.from_dict(raw, str(path))


def read_yaml_file(path: str | Path):
    """The YAML document in a regular file of at most MAX_CONFIG_BYTES with at most MAX_YAML_ALIASES aliases."""
    path = Path(path)
    try:
        if not path.is_file():  # also refuses FIFOs and devices, which would block or never end
            raise ConfigError(f"{path}: no such config file" if not path.exists() else f"{path}: not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        return yaml.load(data.decode("utf-8"), Loader=_BoundedLoader)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None


class _BoundedLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses documents with more than MAX_YAML_ALIASES aliases."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name)")
        return super().compose_node(parent, index)


def save_config(config: Config, path: str | Path) -> None:
    write_text_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _reject_unknown(raw: dict, known, origin: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")


def _build_section(section_cls, raw, origin: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(section_cls)}
    _reject_unknown(raw, fields, origin)
    values = {name: _coerce(value, fields[name].type, f"{origin}.{name}") for name, value in raw.items()}
    return section_cls(**values)


def _coerce(value, type_name: str, origin: str):
    """Check a YAML value against the field's declared type (ints may stand for floats)."""
    optional = "None" in type_name
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{origin}: must not be empty")
    if type_name == "bool | str":  # train.jit
        if isinstance(value, bool) or value == JIT_AUTO:
            return value
        raise ConfigError(f"{origin}: expected true, false or {JIT_AUTO}, got {value!r}")
    if type_name.startswith("bool"):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{origin}: expected true or false, got {value!r}")
    if type_name.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{origin}: expected an integer, got {value!r}")
    if type_name.startswith("float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        hint = " (YAML reads a number without a dot as text: write 1e-8 as 1.0e-8)" if _looks_like_float(value) else ""
        raise ConfigError(f"{origin}: expected a number, got {value!r}{hint}")
    if type_name == "list[float]":
        if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value]
        raise ConfigError(f"{origin}: expected a list of numbers, got {value!r}")
    if type_name == "list[str]":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ConfigError(f"{origin}: expected a list of names, got {value!r}")
    if type_name.startswith("list"):
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value
        raise ConfigError(f"{origin}: expected a list of integers, got {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{origin}: expected a string, got {value!r}")


def _looks_like_float(value) -> bool:
    """Text that Python reads as a number: what PyYAML (YAML 1.1) makes of 1e-8, which has no dot."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True
