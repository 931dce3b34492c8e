"""What the int8 ONNX files (python -m export --onnx-int8) cost in quality, on MNIST (a dev tool).

    python benchmarks/int8_quality.py --export exports

Encodes MNIST training images (--train-count) and the 10k test images with the float32 and the
int8 files through ALAEOnnx, and prints for each: the 1-NN accuracy of the test codes against the
training codes (the probe's first number), the test reconstruction MSE (pixels in [0, 1]) and,
for int8, the relative RMS difference of its codes and reconstructions from float32's. JSON on
the last line. Use an export of an MNIST MLP run.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from serving.command_line import CommandParser  # noqa: E402
from serving.layout import FLOAT32, INT8  # noqa: E402
from serving.onnx_model import ALAEOnnx  # noqa: E402


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/int8_quality.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, required=True, help="EXPORT directory of python -m export --onnx-int8")
    parser.add_argument("--name", help="model name when EXPORT holds several")
    parser.add_argument("--train-count", type=int, default=20000, help="training images the 1-NN searches (default 20000)")
    parser.add_argument("--batch", type=int, default=250, help="images per call (default 250)")
    args = parser.parse_args(argv)
    if min(args.train_count, args.batch) < 1:
        parser.error("--train-count and --batch must be at least 1")
    return args


def in_batches(function, values, batch):
    return np.concatenate([function(values[i : i + batch]) for i in range(0, len(values), batch)])


def relative_rms(actual, expected) -> float:
    return float(np.sqrt(np.mean((actual - expected) ** 2) / np.mean(expected**2)))


def main(argv=None) -> int:
    args = parse_args(argv)
    from alae_tf.data import load_mnist  # TensorFlow's import: after the command line was read
    from alae_tf.metrics.probe import nearest_neighbour_accuracy

    try:
        models = {variant: ALAEOnnx(args.export, name=args.name, variant=variant) for variant in (FLOAT32, INT8)}
    except (FileNotFoundError, ValueError) as exc:  # no such export, or no int8 files in it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if models[FLOAT32].image_shape != (28, 28, 1):
        print(f"error: this benchmark feeds MNIST's 28x28 images; {args.export} holds a model of "
              f"{'x'.join(map(str, models[FLOAT32].image_shape))} images", file=sys.stderr)
        return 2
    mnist = load_mnist()
    train, test = mnist.train_images[: args.train_count, :, :, None], mnist.test_images[:, :, :, None]
    results, outputs = {}, {}
    for variant, model in models.items():
        started = time.perf_counter()
        train_codes, test_codes = in_batches(model.encode, train, args.batch), in_batches(model.encode, test, args.batch)
        reconstructions = in_batches(model.decode, test_codes, args.batch)
        originals = test.astype(np.float32) / 127.5 - 1.0
        outputs[variant] = (test_codes, reconstructions)
        results[variant] = {
            "probe_1nn_accuracy": nearest_neighbour_accuracy(train_codes, mnist.train_labels[: args.train_count],
                                                             test_codes, mnist.test_labels),
            "reconstruction_mse": float(np.mean(((reconstructions - originals) / 2) ** 2)),
            "seconds": round(time.perf_counter() - started, 1),
        }
    results[INT8]["codes_relative_rms"] = relative_rms(outputs[INT8][0], outputs[FLOAT32][0])
    results[INT8]["reconstructions_relative_rms"] = relative_rms(outputs[INT8][1], outputs[FLOAT32][1])
    for variant, values in results.items():
        print(f"{variant:8s} " + "  ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                                          for key, value in values.items()))
    print(json.dumps({"benchmark": "int8_quality", "export": str(args.export), "train_count": args.train_count,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
