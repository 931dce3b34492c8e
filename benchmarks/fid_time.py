"""Wall time of FID for 10k generated images on this CPU, and sanity values of FID on MNIST.

With --run: generate --count images from the run's latest checkpoint (G_ema(F_ema(z))) and time
generation + Inception features + the Frechet distance against the first --count training images
(whose features are computed first, untimed). Without --run, the MNIST test split stands in for
the generated images (the time is then features + distance).

--sanity adds FID(MNIST train first N, MNIST test N) and FID(MNIST test N, uniform noise N), N = --count.

    python benchmarks/fid_time.py [--run runs/mnist] [--count 10000] [--sanity]

Features are computed directly (the on-disk cache of real features is not used). Prints figures
as they come, then one JSON object on the last line.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from alae_tf.errors import ALAEError  # noqa: E402
from serving.command_line import CommandParser  # noqa: E402


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/fid_time.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="run directory to generate from (default: MNIST test images stand in)")
    parser.add_argument("--count", type=int, default=10_000, help="images per set (default 10000)")
    parser.add_argument("--batch-size", type=int, default=250, help="images per generation batch (default 250)")
    parser.add_argument("--sanity", action="store_true", help="also FID(MNIST train, test) and FID(MNIST test, noise)")
    args = parser.parse_args(argv)
    if args.count < 2 or args.batch_size < 1:
        parser.error("--count must be at least 2 (a covariance) and --batch-size at least 1")
    if args.count > 10_000 and (args.run is None or args.sanity):  # the test split stands in, or is compared
        parser.error(f"--count {args.count}: the MNIST test split has 10,000 images (with --sanity, or without --run)")
    return args


def batches(images, batch_size=250):
    return (images[start : start + batch_size] for start in range(0, len(images), batch_size))


def features_of(images, label):
    from alae_tf.metrics.inception import inception_features

    return inception_features().features(batches(images), total=len(images), label=label)


def generated_source(args):
    """(description, iterable of uint8 batches) of the images to time."""
    from alae_tf.data import load_mnist

    if args.run is None:
        test = load_mnist("auto").test_images[: args.count]
        return f"MNIST test split ({len(test)} images) standing in for generated ones", batches(test)
    from alae_tf.inference import Sampler
    from alae_tf.metrics.context import EvalContext
    from alae_tf.run_dir import load_run

    config, model = load_run(args.run)
    data = load_mnist(config.data.source, config.data.path)
    ctx = EvalContext(sampler=Sampler.from_model(model), config=config, data=data, num_samples=args.count, batch_size=args.batch_size)
    return f"G_ema(F_ema(z)) of {args.run}", ctx.generated_uint8(args.count)


def main(argv=None):
    args = parse_args(argv)
    from alae_tf.data import load_mnist  # TensorFlow's import: after the command line was read
    from alae_tf.metrics.feature_stats import frechet_distance
    from alae_tf.metrics.inception import inception_features

    try:
        source, generated_batches = generated_source(args)  # a --run that is none is said before any work
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inception_features()  # weights read and network built outside the timing
    train = load_mnist("auto").train_images[: args.count]
    real = features_of(train, f"real: MNIST train first {len(train)}")
    started = time.perf_counter()
    fake = inception_features().features(generated_batches, total=args.count, label=f"timed: {source}")
    features_seconds = time.perf_counter() - started
    fid = frechet_distance(real, fake)
    total_seconds = time.perf_counter() - started
    result = {
        "benchmark": "fid_time", "source": source, "images": len(fake), "real_images": len(real),
        "fid": round(fid, 4), "seconds_total": round(total_seconds, 1),
        "seconds_generation_and_features": round(features_seconds, 1),
        "seconds_frechet": round(total_seconds - features_seconds, 1),
        "images_per_second": round(len(fake) / features_seconds, 2),
        "cpus": os.cpu_count(), "machine": platform.machine(),
    }
    print(f"FID of {len(fake)} images in {total_seconds:.0f} s ({result['images_per_second']} images/s through "
          f"Inception, Frechet distance {result['seconds_frechet']} s); FID = {fid:.3f}")
    if args.sanity:
        result["sanity"] = sanity(args.count, real, fake if args.run is None else None)
        print(f"sanity: {result['sanity']}")
    print(json.dumps(result))


def sanity(count, train_features, test_features=None):
    """FID(MNIST train, MNIST test) and FID(MNIST test, uniform noise), `count` images each."""
    from alae_tf.data import load_mnist
    from alae_tf.metrics.feature_stats import frechet_distance

    if test_features is None:
        test_features = features_of(load_mnist("auto").test_images[:count], "MNIST test")
    noise = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    noise_features = features_of(noise, "uniform noise 28x28")
    return {
        "fid_mnist_train_vs_test": round(frechet_distance(train_features, test_features), 3),
        "fid_mnist_test_vs_uniform_noise": round(frechet_distance(test_features, noise_features), 3),
        "images_per_set": count,
    }


if __name__ == "__main__":
    sys.exit(main())
