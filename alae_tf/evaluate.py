"""Evaluate a trained run: `python -m alae_tf.evaluate --run runs/mnist`.

Prints a markdown table and writes RUN/eval.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from alae_tf.atomic_file import write_text_atomically
from alae_tf.config import MNIST_SOURCES
from alae_tf.data import ImageSplits, open_image_source
from alae_tf.errors import ALAEError, ConfigError
from alae_tf.inference import Sampler
from alae_tf.metrics import METRICS, EvalContext
from alae_tf.run_dir import RunDir, load_run


DEFAULT_METRICS = ("probe", "reconstruction")


def metrics_help() -> str:
    lines = ["metrics:"]
    for name, metric in METRICS.items():
        needs = f" [needs: {metric.needs}]" if metric.needs else ""
        lines.append(f"  {name:<16}{metric.description}{needs}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m alae_tf.evaluate",
        description="Evaluate a trained ALAE run (its latest checkpoint) and write RUN/eval.json.",
        epilog=metrics_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", type=Path, required=True, help="run directory written by python -m alae_tf.train")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                        help=f"comma-separated metric names, listed below (default: {','.join(DEFAULT_METRICS)})")
    parser.add_argument("--num-samples", type=int,
                        help="images per sample-based metric (default: each metric's own, e.g. 50000 for FID as in the paper)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents drawn by sample-based metrics (default 0)")
    parser.add_argument("--batch-size", type=int, default=250, help="images per batch through the networks (default 250)")
    parser.add_argument("--checkpoint", help="a checkpoint prefix to evaluate instead of the latest (e.g. RUN/checkpoints/ckpt-5000)")
    parser.add_argument("--data-source", choices=MNIST_SOURCES, help="override the run's data source")
    parser.add_argument("--data-path", help="override the run's data path")
    return parser.parse_args(argv)


def evaluate(args) -> dict:
    names = [name.strip() for name in args.metrics.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(METRICS)}")
    if args.num_samples is not None and args.num_samples < 2:
        raise ConfigError(f"--num-samples must be at least 2, got {args.num_samples}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    config, model = load_run(args.run, args.checkpoint)
    data = evaluation_data(config, args)
    ctx = EvalContext(sampler=Sampler.from_model(model), config=config, data=data, num_samples=args.num_samples,
                      seed=args.seed, batch_size=args.batch_size)
    started = time.time()
    values = {}
    for name in names:
        print(f"== {name}")
        values.update(METRICS[name].compute(ctx))
    report = {
        "run": str(args.run),
        "step": model.step,
        "data": data.source,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "metrics": values,
        "seconds": round(time.time() - started, 1),
    }
    return report


REAL_IMAGES = 60000  # training images loaded at least: all of MNIST's (the probe's), more than FID's 50k


def evaluation_data(config, args) -> ImageSplits:
    """The run's data as uint8 NHWC arrays at the final resolution: max(--num-samples, 60k) training
    images (all of them if fewer) in a fixed shuffled order, with their labels, and the held-out images."""
    source, path = args.data_source or config.data.source, args.data_path or config.data.path
    resolution, _, channels = config.model.image_shape
    images = open_image_source(config.data.dataset, path, resolution, channels=channels, mnist_source=source,
                               test_count=config.data.test_count)
    count = min(images.num_train, max(args.num_samples or 0, REAL_IMAGES))
    return ImageSplits(images.train_images(resolution, count), images.train_sample_labels(count),
                       images.test_images(resolution), images.test_labels, images.description)


def markdown_table(report) -> str:
    lines = [f"step {report['step']} of {report['run']}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in report["metrics"].items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(report))  # first: a run directory that cannot be written loses no result
    eval_file = RunDir(args.run).eval_file
    try:
        write_text_atomically(eval_file, json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        print(f"error: cannot write {eval_file} ({exc.strerror}); the results are the table above", file=sys.stderr)
        return 2
    print(f"written to {eval_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
