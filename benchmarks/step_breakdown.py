"""Where the ALAE training step's time goes: each part of `ALAE.train_step` timed on its own.

    python benchmarks/step_breakdown.py [--preset mnist] [--jit] [--mixed-precision bf16]

Each part is the model's own method wrapped in a `tf.function` (XLA-compiled with --jit) and
called on one fixed batch of the preset's real data, as `fit` would feed it (top level, after
the fade-in):

- `step`: the whole `train_step` (the three updates, the EMA, the finite check and the logs);
- `update_1`: E and D on the adversarial loss + the R1 penalty (`_discriminator_step`);
- `update_1_no_penalty`: the same without the penalty: `update_1` minus it is the R1 double
  backward's cost;
- `update_2`: F and G (`_generator_step`); `update_3`: the latent reciprocity (`_reciprocity_step`);
- `ema`: the EMA lerp of the averaged nets; `adam_ed`: only Adam's update of E and D's weights,
  from fixed gradients (one of the step's four such updates: three for the E/D optimizer's and
  F/G's groups in updates I-III, counted by their weights below).

Weights change as the parts run (each call is a real update), which does not change their cost.
Each part: --warmup untimed calls, then --windows windows of --calls calls; the median window is
reported in ms per call, with its share of `step`. Prints a table, then JSON on the last line.
"""

import argparse
import json
import os
import platform
import statistics
import time

import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
import keras
import tensorflow as tf

from alae_tf import schedule
from alae_tf.config import load_preset
from alae_tf.errors import ConfigError
from alae_tf.data import open_image_source
from alae_tf.data.batches import training_batches
from alae_tf.model import build_alae
from alae_tf.compute import set_precision, set_training_graph_options
from serving.command_line import CommandParser


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/step_breakdown.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist", help="an ALAE preset (default: mnist)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile every part")
    parser.add_argument("--mixed-precision", choices=["none", "bf16"], default="none",
                        help="compute precision, as python -m alae_tf.train --mixed-precision (default: none)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per part (default: 10)")
    parser.add_argument("--calls", type=int, default=30, help="calls per timed window (default: 30)")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per part, median reported (default: 3)")
    args = parser.parse_args(argv)
    if min(args.warmup, args.calls, args.windows) < 0 or args.calls == 0 or args.windows == 0:
        parser.error("--calls and --windows must be positive, --warmup not negative")
    try:
        args.config = load_preset(args.preset)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.config.model.kind != "alae":
        parser.error(f"{args.preset} trains a {args.config.model.kind}, not ALAE: pass an ALAE preset")
    return args


def fixed_batch(config, model):
    """One batch of the preset's data at the top level, after its fade-in."""
    phase = schedule.phases(config)[-1]
    model.enter_phase(phase)
    d = config.data
    source = open_image_source(d.dataset, d.path, config.model.image_shape[0], mnist_source=d.source)
    start = phase.faded_in_step
    batches = training_batches(source, phase, start_step=start, latent_dim=config.model.latent_dim, seed=0,
                               num_styles=model.generator.num_styles,
                               styles_in_use=model.generator.styles_per_level * (phase.level + 1),
                               mixing_probability=config.train.style_mixing_prob)
    return next(iter(batches))


def parts(model, data):
    """{name: a function of no arguments running that part once}; traced here, before any timing."""
    def no_penalty_update_1():
        kept, model.gradient_penalty = model.gradient_penalty, "none"
        try:
            return model._discriminator_step(data, 1)
        finally:
            model.gradient_penalty = kept

    variables = model._ed_variables()
    gradients = [tf.fill(v.shape, tf.constant(1e-4, v.dtype)) for v in variables]
    return {
        "step": lambda: model.train_step(data),
        "update_1": lambda: model._discriminator_step(data, 1),
        "update_1_no_penalty": no_penalty_update_1,
        "update_2": lambda: model._generator_step(data, 1),
        "update_3": lambda: model._reciprocity_step(data, 1),
        "ema": model._update_ema,
        "adam_ed": lambda: model.optimizer_ed.apply_gradients(zip(gradients, variables)),
    }


def time_part(function, args) -> float:
    """Median ms per call over the timed windows."""
    for _ in range(args.warmup):
        function()
    tf.constant(0.0).numpy()  # wait for the warm-up calls
    windows = []
    for _ in range(args.windows):
        start = time.perf_counter()
        for _ in range(args.calls):
            result = function()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)
        windows.append((time.perf_counter() - start) / args.calls * 1e3)
    return statistics.median(windows)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = args.config
    config.train.jit = args.jit
    config.train.mixed_precision = args.mixed_precision
    set_precision(args.mixed_precision)
    set_training_graph_options()  # as python -m alae_tf.train
    keras.utils.set_random_seed(0)
    model = build_alae(config)
    data = fixed_batch(config, model)
    functions = {name: tf.function(body, jit_compile=args.jit) for name, body in parts(model, data).items()}
    times = {name: time_part(function, args) for name, function in functions.items()}
    step = times["step"]
    times["r1_double_backward"] = times["update_1"] - times["update_1_no_penalty"]
    print(f"{'part':<22} {'ms':>8} {'of step':>8}")
    for name, ms in times.items():
        print(f"{name:<22} {ms:8.2f} {ms / step:8.1%}")
    sizes = {name: int(sum(v.shape.num_elements() for v in getattr(model, f"_{name}_variables")())) for name in ("ed", "fg")}
    print(json.dumps({
        "benchmark": "step_breakdown", "preset": args.preset, "jit": args.jit, "mixed_precision": args.mixed_precision,
        "batch_size": int(data["images"].shape[0]) if isinstance(data, dict) and "images" in data else None,
        "ms": {name: round(ms, 3) for name, ms in times.items()},
        "share_of_step": {name: round(ms / step, 4) for name, ms in times.items()},
        "weights": sizes, "cpu_count": os.cpu_count(), "machine": platform.machine(), "tensorflow": tf.__version__,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
