"""Training throughput of a preset's full ALAE step (3 updates) through the product path:
`model.fit` on the tf.data pipeline, on the current device.

    python benchmarks/train_throughput.py [--jit] [--mixed-precision bf16] [--batch-size 128]
    python benchmarks/train_throughput.py --preset mnist_style32 [--level L] [--during-fade]
                                          [--jit] [--mixed-precision {bf16,fp16}]

MLP presets: random pixels through `training_batches` (batch 128 unless --batch-size).
Style presets: the preset's real data (mnist_style32: MNIST padded to 32x32) through
`style_batches`, as `fit_progressive` trains: the level's batch size (unless --batch-size),
learning rate and EMA decay, the fade-in blend in the graph. `--level` defaults to the top
level; the data starts right after the level's fade-in (blend = 1) unless `--during-fade`
(start of the level, blend rising from 0; the step costs the same: both branches are
computed either way). Style defaults are 3
warm-up steps and 3 windows of 4 steps: an mnist_style32 step at the top level is ~0.8 TFLOP
(batch 64 x 13.2 GFLOP, `benchmarks/style_flops.py`), seconds on a small CPU.
`--mixed-precision fp16` sets the mixed_float16 policy and `make_adam`'s LossScaleOptimizer.

Prints one line per timed window, then a JSON object on the last line.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from alae_tf import schedule
from alae_tf.config import load_preset
from alae_tf.data.images import open_image_source
from alae_tf.data.pipeline import training_batches
from alae_tf.data.progressive import style_batches
from alae_tf.model import build_alae, ema_decay
from alae_tf.run import set_precision

STYLE_DEFAULTS = {"warmup": 3, "window": 4, "windows": 3}
MLP_DEFAULTS = {"warmup": 50, "window": 100, "windows": 5, "batch_size": 128}


class WindowTimer(keras.callbacks.Callback):
    """Wall time of consecutive windows of `window` steps, after `warmup` steps."""

    def __init__(self, warmup, window):
        super().__init__()
        self.warmup, self.window = warmup, window
        self.batches, self.times = 0, []

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches >= self.warmup and (self.batches - self.warmup) % self.window == 0:
            self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--batch-size", type=int, help="MLP: default 128; style: the level's batch size")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--mixed-precision", choices=["none", "bf16", "fp16"], default="none",
                        help="fp16: mixed_float16 with dynamic loss scaling")
    parser.add_argument("--level", type=int, help="style presets: the level to train (default: the top level)")
    parser.add_argument("--during-fade", action="store_true", help="style presets: start at the level's first step")
    parser.add_argument("--warmup", type=int, help="untimed steps (tracing, XLA compile); MLP 50, style 3")
    parser.add_argument("--window", type=int, help="steps per timed window; MLP 100, style 4")
    parser.add_argument("--windows", type=int, help="timed windows, the median is reported; MLP 5, style 3")
    args = parser.parse_args()

    config = load_preset(args.preset)
    style = config.model.backbone == "style"
    for key, value in (STYLE_DEFAULTS if style else MLP_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    config.train.jit = args.jit
    config.train.mixed_precision = args.mixed_precision
    set_precision(args.mixed_precision)
    if args.mixed_precision == "fp16":  # set_precision knows none/bf16 only
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    extra = {}
    if style:
        phase, start_step, extra = style_phase(config, args)
        args.batch_size = phase.batch_size
        config.train.batch_size = phase.batch_size
        model = build_alae(config)
        model.set_level(phase.level)
        model.ema_beta = ema_decay(phase.batch_size, config.train.ema_half_life_images)
        model.optimizer_ed.learning_rate = phase.learning_rate
        model.optimizer_fg.learning_rate = phase.learning_rate
        source = open_image_source(config.data.dataset, config.data.path, config.model.image_shape[0])
        batches = style_batches(source, phase, start_step=start_step, latent_dim=config.model.latent_dim,
                                seed=0, num_styles=model.generator.num_styles,
                                mixing_probability=config.train.style_mixing_prob)
    else:
        config.train.batch_size = args.batch_size
        model = build_alae(config)
        # Random pixels: the step's cost does not depend on image content.
        images = np.random.default_rng(0).integers(0, 256, (60000, *config.model.image_shape[:2]), dtype=np.uint8)
        batches = training_batches(images, batch_size=args.batch_size, latent_dim=config.model.latent_dim, seed=0)
    timer = WindowTimer(args.warmup, args.window)
    total = args.warmup + args.window * args.windows
    model.fit(batches, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[timer], shuffle=False)

    rates = [args.window / (b - a) for a, b in zip(timer.times, timer.times[1:])]
    for i, rate in enumerate(rates):
        print(f"window {i}: {_rounded(rate)} steps/s")
    if not all(math.isfinite(float(v)) for v in model.get_metrics_result().values()):
        print(f"warning: non-finite losses: {model.get_metrics_result()}")
    steps_per_sec = statistics.median(rates)
    result = {
        "benchmark": "train_throughput",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "jit": args.jit,
        "mixed_precision": args.mixed_precision,
        **extra,
        "losses": {k: round(float(v), 4) for k, v in model.get_metrics_result().items()},
        "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "steps_per_sec": _rounded(steps_per_sec),
        "images_per_sec": round(steps_per_sec * args.batch_size, 1 if steps_per_sec >= 1 else 3),
        "window_steps_per_sec": [_rounded(r) for r in rates],
        "device": tf.config.list_logical_devices()[-1].device_type,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result))


def _rounded(rate):
    """2 decimals, or 3 significant digits below 1 step/s (StyleALAE on a CPU)."""
    return round(rate, 2) if rate >= 1 else float(f"{rate:.3g}")


def style_phase(config, args):
    """(phase with the batch size to use, first step, JSON fields) for --level / --during-fade."""
    phases = schedule.phases(config.train, config.num_levels)
    level = len(phases) - 1 if args.level is None else args.level
    if not 0 <= level < len(phases):
        raise SystemExit(f"error: --level must lie in [0, {len(phases) - 1}] for {config.preset}")
    phase = phases[level]
    fade_steps = math.ceil(phase.fade_images / phase.batch_size)
    start_step = phase.first_step if args.during_fade else phase.first_step + fade_steps
    if args.batch_size is not None:
        phase = dataclasses.replace(phase, batch_size=args.batch_size)
    end_step = start_step + args.warmup + args.window * args.windows
    fields = {
        "level": level, "resolution": phase.resolution,
        "fade": "during" if args.during_fade and phase.fade_images else "after",
        "blend_first": round(schedule.blend_at(phase, start_step), 4), "blend_last": round(schedule.blend_at(phase, end_step), 4),
    }
    return phase, start_step, fields


if __name__ == "__main__":
    main()
