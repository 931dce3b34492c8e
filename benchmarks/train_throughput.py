"""Training throughput of a preset's full ALAE step (3 updates) through the product path:
`model.fit` on the tf.data pipeline, on the current device, as `python -m alae_tf.train` runs it.

    python benchmarks/train_throughput.py [--jit] [--mixed-precision bf16] [--batch-size 128]
    python benchmarks/train_throughput.py --preset mnist_style32 [--level L] [--during-fade]
                                          [--jit] [--mixed-precision {bf16,fp16}]

The preset's real data (mnist: MNIST 28x28; mnist_style32: MNIST padded to 32x32) through
`training_batches` at one level of the schedule (`model.enter_phase`): the level's batch size
(unless --batch-size), learning rate and EMA decay, the fade-in blend in the graph. `--level`
defaults to the top level (the MLP has one); the data starts right after the level's fade-in
(blend = 1) unless `--during-fade` (start of the level, blend rising from 0; the step costs the
same: both branches are computed either way). Defaults for a one-level model: 50 warm-up
steps, 5 windows of 100; for a growing one 3 warm-up steps and 3 windows of 4: an
mnist_style32 step at the top level is ~0.55 TFLOP (batch 64 x 8.57 GFLOP,
`benchmarks/style_flops.py`), seconds on a small CPU. `--mixed-precision fp16` sets the
mixed_float16 policy and `make_adam`'s LossScaleOptimizer.

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

import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
import keras
import numpy as np
import tensorflow as tf

from alae_tf import schedule
from alae_tf.config import load_preset
from alae_tf.errors import ConfigError
from alae_tf.data import open_image_source
from alae_tf.data.batches import training_batches
from alae_tf.model import build_alae
from alae_tf.compute import set_precision, set_training_graph_options
from serving.command_line import CommandParser

GROWING_DEFAULTS = {"warmup": 3, "window": 4, "windows": 3}
ONE_LEVEL_DEFAULTS = {"warmup": 50, "window": 100, "windows": 5}


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
    parser = CommandParser(prog="python benchmarks/train_throughput.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist", help="the training preset to time (default: mnist)")
    parser.add_argument("--batch-size", type=int, help="default: the level's batch size (mnist: 128)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--mixed-precision", choices=["none", "bf16", "fp16"], default="none",
                        help="fp16: mixed_float16 with dynamic loss scaling")
    parser.add_argument("--level", type=int, help="the level to train (default: the top level)")
    parser.add_argument("--during-fade", action="store_true", help="start at the level's first step")
    parser.add_argument("--warmup", type=int, help="untimed steps (tracing, XLA compile); one-level 50, growing 3")
    parser.add_argument("--window", type=int, help="steps per timed window; one-level 100, growing 4")
    parser.add_argument("--windows", type=int, help="timed windows, the median is reported; one-level 5, growing 3")
    args = parser.parse_args()

    try:
        config = load_preset(args.preset)
    except ConfigError as exc:
        parser.error(str(exc))
    if config.model.kind != "alae":
        parser.error(f"{args.preset} trains a {config.model.kind}, not ALAE: pass an ALAE preset")
    if args.level is not None and not 0 <= args.level < config.levels:
        parser.error(f"--level must lie in [0, {config.levels - 1}] for {args.preset}, got {args.level}")
    for key, value in (GROWING_DEFAULTS if config.levels > 1 else ONE_LEVEL_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # The first window starts at the end of the last warm-up step: at least one (it traces the step).
    for flag, least in (("warmup", 1), ("window", 1), ("windows", 1), ("batch_size", 1)):
        if getattr(args, flag) is not None and getattr(args, flag) < least:
            parser.error(f"--{flag.replace('_', '-')} must be at least {least}, got {getattr(args, flag)}")
    config.train.jit = args.jit
    config.train.mixed_precision = args.mixed_precision
    set_precision(args.mixed_precision)
    set_training_graph_options()  # as python -m alae_tf.train
    keras.utils.set_random_seed(0)
    phase, start_step, extra = phase_to_time(config, args)
    args.batch_size = phase.batch_size
    model = build_alae(config)
    model.enter_phase(phase)
    d = config.data
    source = open_image_source(d.dataset, d.path, config.model.image_shape[0], mnist_source=d.source)
    batches = training_batches(source, phase, start_step=start_step, latent_dim=config.model.latent_dim, seed=0,
                               num_styles=model.generator.num_styles,
                               styles_in_use=model.generator.styles_per_level * (phase.level + 1),
                               mixing_probability=config.train.style_mixing_prob)
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


def phase_to_time(config, args):
    """(phase with the batch size to use, first step, JSON fields) for --level / --during-fade."""
    phases = schedule.phases(config)
    level = len(phases) - 1 if args.level is None else args.level
    phase = phases[level]
    start_step = phase.first_step if args.during_fade else phase.faded_in_step
    if args.batch_size is not None:
        phase = dataclasses.replace(phase, batch_size=args.batch_size)
    end_step = start_step + args.warmup + args.window * args.windows
    fields = {
        "level": level, "resolution": phase.resolution,
        "fade": "during" if args.during_fade and phase.fade_images else "after",
        "blend_first": round(float(schedule.blend_at(phase, start_step)), 4),
        "blend_last": round(float(schedule.blend_at(phase, end_step)), 4),
    }
    return phase, start_step, fields


if __name__ == "__main__":
    main()
