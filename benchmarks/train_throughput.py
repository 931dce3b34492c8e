"""Training throughput of a preset's full ALAE step (3 updates) through the product path:
`model.fit` on the tf.data pipeline, on the current device.

    python benchmarks/train_throughput.py [--jit] [--mixed-precision bf16] [--batch-size 128]

Prints one line per timed window, then a JSON object on the last line.
"""

import argparse
import json
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from alae_tf.config import load_preset
from alae_tf.data.pipeline import training_batches
from alae_tf.model import build_alae
from alae_tf.run import set_precision


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
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--mixed-precision", choices=["none", "bf16"], default="none")
    parser.add_argument("--warmup", type=int, default=50, help="untimed steps (tracing, XLA compile)")
    parser.add_argument("--window", type=int, default=100, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported")
    args = parser.parse_args()

    config = load_preset(args.preset)
    config.train.batch_size = args.batch_size
    config.train.jit = args.jit
    config.train.mixed_precision = args.mixed_precision
    set_precision(args.mixed_precision)
    keras.utils.set_random_seed(0)
    model = build_alae(config)
    # Random pixels: the step's cost does not depend on image content.
    images = np.random.default_rng(0).integers(0, 256, (60000, *config.model.image_shape[:2]), dtype=np.uint8)
    batches = training_batches(images, batch_size=args.batch_size, latent_dim=config.model.latent_dim, seed=0)
    timer = WindowTimer(args.warmup, args.window)
    total = args.warmup + args.window * args.windows
    model.fit(batches, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[timer])

    rates = [args.window / (b - a) for a, b in zip(timer.times, timer.times[1:])]
    for i, rate in enumerate(rates):
        print(f"window {i}: {rate:.2f} steps/s")
    steps_per_sec = statistics.median(rates)
    result = {
        "benchmark": "train_throughput",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "jit": args.jit,
        "mixed_precision": args.mixed_precision,
        "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "steps_per_sec": round(steps_per_sec, 2),
        "images_per_sec": round(steps_per_sec * args.batch_size, 1),
        "window_steps_per_sec": [round(r, 2) for r in rates],
        "device": tf.config.list_logical_devices()[-1].device_type,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
