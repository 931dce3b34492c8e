"""Evaluate a trained run: `python -m alae_tf.evaluate --run runs/mnist`.

Prints a markdown table and writes RUN/eval.json. Evaluations add up there: metrics computed
earlier for the same checkpoint and data and not computed again are kept (an hour of FID is not
lost to a later probe run), and the reports of other checkpoints stay under "other_evaluations".

This module reads the command line; alae_tf.evaluation evaluates (it imports TensorFlow, which
takes seconds: --help and a mistyped flag are answered before).
"""

import argparse
import sys
from pathlib import Path

from alae_tf.config import MNIST_SOURCES
from alae_tf.metrics import BATCH_SIZE, DEFAULT_METRICS, METRICS, PPL_CROPS, UNLABELLED_DEFAULT_METRICS
from alae_tf.run_layout import run_problem
from serving.command_line import CommandParser


def metrics_help() -> str:
    lines = ["metrics:"]
    for name, metric in METRICS.items():
        needs = f" [needs: {metric.needs}]" if metric.needs else ""
        lines.append(f"  {name:<16}{metric.description}{needs}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m alae_tf.evaluate",
        description="Evaluate a trained run (ALAE or a baseline; its latest checkpoint) and write RUN/eval.json.",
        epilog=metrics_help() + "\n\nexamples:\n"
        "  python -m alae_tf.evaluate --run runs/mnist                       # the default metrics\n"
        "  python -m alae_tf.evaluate --run runs/mnist --metrics fid,probe_codes --checkpoint ckpt-5000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", type=Path, required=True, help="run directory written by python -m alae_tf.train")
    parser.add_argument("--metrics",
                        help=f"comma-separated metric names, listed below (default: {','.join(DEFAULT_METRICS)}; "
                        f"{','.join(UNLABELLED_DEFAULT_METRICS)} for data without class labels)")
    parser.add_argument("--num-samples", type=int,
                        help="images per sample-based metric (default: each metric's own, e.g. 50000 for FID as in the paper)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents drawn by sample-based metrics (default 0)")
    parser.add_argument("--batch-size", type=int,
                        help=f"images per batch through the networks (default {BATCH_SIZE}, fewer for larger images so that "
                        "memory stays bounded: 85 at 128x128 RGB, 21 at 256x256, 1 at 1024x1024; recorded in a "
                        "figure's settings, since StyleALAE's noise is drawn per batch)")
    parser.add_argument("--ppl-crop", choices=PPL_CROPS, default="none",
                        help="the region ppl_full / ppl_end compare (default none: the whole image): face, as the ALAE "
                        "metric code for aligned FFHQ / CelebA-HQ faces (the paper's figures), celeba its tighter crop "
                        "for CelebA 128x128")
    parser.add_argument("--checkpoint", help="checkpoint to evaluate instead of the latest: RUN/checkpoints/ckpt-5000, or just ckpt-5000")
    parser.add_argument("--data-source", choices=MNIST_SOURCES, help="override the run's data source")
    parser.add_argument("--data-path", help="where the run's data is now, if it moved (default: data.path in the run's "
                        "config.yaml); read by the metrics that compare with real images")
    args = parser.parse_args(argv)
    if args.metrics is not None:  # a list, each name once, in order
        args.metrics = list(dict.fromkeys(name.strip() for name in args.metrics.split(",") if name.strip()))
    return args


def argument_problem(args) -> str | None:
    """What is wrong with the arguments, told before TensorFlow's import (a misspelt metric or --run at
    once), or None."""
    unknown = [name for name in args.metrics or () if name not in METRICS]
    if unknown or args.metrics == []:
        return f"unknown metric(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(METRICS)}"
    if args.num_samples is not None and args.num_samples < 2:
        return f"--num-samples must be at least 2, got {args.num_samples}"
    if args.batch_size is not None and args.batch_size < 1:
        return f"--batch-size must be positive, got {args.batch_size}"
    if not 0 <= args.seed < 2**31:  # as train.seed
        return f"--seed must lie in [0, 2^31), got {args.seed}"
    return run_problem(args.run)


def main(argv=None) -> int:
    args = parse_args(argv)
    if problem := argument_problem(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from alae_tf import evaluation  # TensorFlow's import: after the command line was read

    return evaluation.run(args)


if __name__ == "__main__":
    sys.exit(main())
