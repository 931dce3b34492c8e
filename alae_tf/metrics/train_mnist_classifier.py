"""The command that trains the shipped MNIST classifier (alae_tf.metrics.mnist_classifier) again:

    python -m alae_tf.metrics.train_mnist_classifier --out alae_tf/metrics/assets/mnist_classifier.weights.h5

(a module of its own: its --help and argument errors come before mnist_classifier's import of
TensorFlow, which takes seconds.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from alae_tf.config import MNIST_SOURCES
from alae_tf.errors import ALAEError
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving.command_line import CommandParser

EPOCHS, SEED = 6, 0  # how the shipped weights were trained


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m alae_tf.metrics.train_mnist_classifier",
        description="Train the FD-MNIST feature network on the MNIST training split (seeded, deterministic), "
                    "report its test accuracy and save its weights.",
    )
    parser.add_argument("--out", type=Path, required=True, help="weights file to write (must end in .weights.h5)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"seed of initialisation, shuffling, dropout (default {SEED})")
    parser.add_argument("--data-source", choices=MNIST_SOURCES, default="auto", help="MNIST source, as for training (default auto)")
    parser.add_argument("--data-path", help="MNIST data path, as for training")
    args = parser.parse_args(argv)
    if args.epochs < 1:  # 0 wrote the untrained network's weights and exited 0
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.out.name.endswith(".weights.h5"):
        print(f"error: --out must end in .weights.h5, got {args.out}", file=sys.stderr)
        return 2
    from alae_tf.data import load_mnist  # TensorFlow's import: after the command line was read
    from alae_tf.metrics.mnist_classifier import accuracy, save_weights, train_classifier

    try:
        with stop_signals_raise_stopped():
            data = load_mnist(args.data_source, args.data_path)
            model = train_classifier(data, args.epochs, args.seed)
            print(f"test accuracy {accuracy(model, data.test_images, data.test_labels):.4f} on "
                  f"{len(data.test_labels)} images")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            # Written beside --out, then renamed over it: a stop while saving leaves the earlier weights
            # (by default the shipped ones) whole.
            with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=".partial-") as staging:
                save_weights(model, Path(staging) / args.out.name)
                os.replace(Path(staging) / args.out.name, args.out)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); {args.out} was not written", file=sys.stderr)
        return interrupted_exit_code(exc)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
