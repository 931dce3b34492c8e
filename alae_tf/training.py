"""The training behind `python -m alae_tf.train` (alae_tf/train.py reads its command line): the
run's config (a resumed run's checks), the distribution strategy, the model, restoring, and `fit`
over the schedule's levels with the callbacks that checkpoint, log and stop."""

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from alae_tf import multiworker, schedule
from alae_tf.callbacks import (CheckpointSaver, LogWindows, ProgressBar, ProgressLines, StopOnSignal, TrainingMonitor,
                               drop_log_rows_after)
from alae_tf.compute import (cpu_flags, precision_cpu_warning, process_settings_restored, set_precision,
                             set_training_graph_options)
from alae_tf.config import (
    DEFAULT_PRESET,
    deterministic_problem,
    load_training_config_file,
    load_preset,
    preset_file,
    save_config,
)
from alae_tf.data import open_run_images
from alae_tf.data.batches import training_batches
from alae_tf.errors import ALAEError, ConfigError, first_line, out_of_disk_space, written_file
from alae_tf.model_kinds import auto_jit_here, build_model
from alae_tf.run_dir import (
    RunDir,
    checkpoint_manager,
    checkpoint_step,
    data_change,
    newest_intact_checkpoint,
    read_run_config,
    record_data_contents,
    remove_killed_saves,
    restore,
    set_aside_newer_checkpoints,
)
from alae_tf.run_lock import RunLock
from alae_tf.stop_signals import interrupted_exit_code

# Settings a resumed run may change; anything else would silently change the experiment.
RESUMABLE_OVERRIDES = {"steps", "epochs", "jit", "deterministic", "mixed_precision", "checkpoint_every", "sample_every", "log_every"}


def requested_overrides(args) -> dict:
    train = {
        "steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "jit": args.jit, "deterministic": args.deterministic, "mixed_precision": args.mixed_precision, "checkpoint_every": args.checkpoint_every,
        "sample_every": args.sample_every, "log_every": args.log_every,
    }
    data = {"dataset": args.dataset, "source": args.data_source, "path": args.data_path}
    return {"train": {k: v for k, v in train.items() if v is not None}, "data": {k: v for k, v in data.items() if v is not None}}


def resolve_config(args, run: RunDir):
    """The preset (new run) or the run's own config.yaml (resume), with the flags applied."""
    overrides = requested_overrides(args)
    resuming = run.config_file.is_file()
    if resuming:
        config = read_run_config(run)
        trained_precision = config.train.mixed_precision
        asked = check_same_experiment(args, config, overrides, run)
        if asked is not None:  # --config's own resumable settings (steps, intervals, ...) apply as flags do
            for key in RESUMABLE_OVERRIDES:
                setattr(config.train, key, getattr(asked.train, key))
            config.data.path = asked.data.path or config.data.path  # where the data is now, if the file says
    else:
        config = (load_training_config_file(args.config, DEFAULT_PRESET) if args.config
                  else load_preset(args.preset or DEFAULT_PRESET))
    apply_overrides(config, overrides)
    config.validate("command line")
    if resuming and trained_precision != config.train.mixed_precision and "fp16" in (trained_precision, config.train.mixed_precision):
        raise ConfigError(f"{run.root} was trained with mixed precision {trained_precision}; fp16's optimizers keep a "
                          "loss scale in the checkpoints that the others lack, so a resume may switch between none "
                          f"and bf16 only: resume with --mixed-precision {trained_precision}, or train a new --out")
    if not resuming and (ignored := config.ignored_settings()):
        t = config.train
        print(f"note: {', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on this run "
              f"({config.data.dataset} data, {config.model.backbone} backbone, {t.adversarial_loss} loss, "
              f"{t.gradient_penalty} penalty)", file=sys.stderr)
    return config, resuming


def apply_overrides(config, overrides: dict) -> None:
    for key, value in overrides["train"].items():
        setattr(config.train, key, value)
    if "batch_size" in overrides["train"]:  # one batch size for every level, in place of a preset's list
        config.train.level_batch_sizes = []
    if "steps" in overrides["train"]:
        config.train.epochs = None
    if "epochs" in overrides["train"]:
        config.train.steps = None
    for key, value in overrides["data"].items():
        setattr(config.data, key, value)
    if config.data.path is not None:  # kept in config.yaml: evaluate, edit and resumes may run from elsewhere
        config.data.path = os.path.abspath(os.path.expanduser(config.data.path))


def check_same_experiment(args, config, overrides: dict, run: RunDir):
    """Resuming takes the run's config.yaml; a command asking for another experiment is refused.
    Returns the --config file's settings with the flags applied (None without --config)."""
    def refuse(trained, asked):
        raise ConfigError(f"{run.root} was trained with {trained}; resuming with {asked} would change the "
                          "experiment. Use a new --out.")

    if args.preset is not None and args.preset != config.preset:
        refuse(f"preset {config.preset}", f"--preset {args.preset}")
    if args.preset is not None:  # the name alone: a --config copy of the preset keeps it, whatever it changed
        changed = [key for key in changed_settings(config.to_dict(), load_preset(args.preset).to_dict()) if key.startswith("model.")]
        if changed:
            raise ConfigError(f"{run.root}'s config.yaml names preset {args.preset} but differs from it in "
                              f"{', '.join(changed[:5])} (a --config copy of it?): resuming with --preset {args.preset} "
                              "would change the experiment. Resume without --preset (the run's config.yaml is read), "
                              "or use a new --out.")
    dataset = overrides["data"].get("dataset", config.data.dataset)
    if dataset != config.data.dataset:
        refuse(f"dataset {config.data.dataset}", f"--dataset {dataset}")
    for key, value in overrides["train"].items():
        if key == "batch_size" and config.train.level_batch_sizes:  # --batch-size would set every level's
            if set(config.train.level_batch_sizes) != {value}:
                refuse(f"batch sizes {config.train.level_batch_sizes} per level", f"--batch-size {value} (for a run "
                       "converted from an official checkpoint: convert it again with --batch-size)")
        elif key not in RESUMABLE_OVERRIDES and getattr(config.train, key) != value:
            refuse(f"{key}={getattr(config.train, key)}", f"--{key.replace('_', '-')} {value}")
    if args.config is None:
        return None
    asked = load_training_config_file(args.config, DEFAULT_PRESET)
    apply_overrides(asked, overrides)
    changed = changed_settings(config.to_dict(), asked.to_dict())
    if changed:
        refuse("its config.yaml", f"{args.config} (it differs in {', '.join(changed[:5])})")
    return asked


def changed_settings(trained: dict, asked: dict, prefix="") -> list[str]:
    """Dotted keys whose values differ, except the settings a resume may change."""
    changed = []
    for key in sorted(set(trained) | set(asked)):
        dotted, a, b = prefix + key, trained.get(key), asked.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_settings(a, b, dotted + ".")
        elif a != b and not (prefix == "train." and key in RESUMABLE_OVERRIDES) and dotted not in ("data.source", "data.path"):
            changed.append(dotted)
    return changed


def check_run_outside_data(run: RunDir, config) -> None:
    """A run inside its image folder would read its own sample grids as training images."""
    d = config.data
    if d.dataset == "folder" and d.path and run.root.resolve().is_relative_to(Path(d.path).resolve()):
        raise ConfigError(f"--out {run.root} is inside the image folder {d.path}: its sample grids would be read as "
                          "training images; put the run elsewhere")


def check_jit_kept(model, trained_with_jit: bool, jit: bool, run: RunDir) -> None:
    """A model that draws noise in its train step keeps its --jit setting on resume: XLA's stateless
    RNG kernels give other numbers than TensorFlow's for the same seed, so the noise would change."""
    if jit != trained_with_jit and draws_noise(model):
        raise ConfigError(f"{run.root} was trained with jit={trained_with_jit}; a run whose generator draws noise "
                          "keeps its --jit setting on resume (XLA draws different noise for the same seed)")


def draws_noise(model) -> bool:
    return bool(model.generator.noise_shapes(model.generator.levels - 1))


def make_deterministic() -> None:
    """train.deterministic: bit-reproducible runs. Each of the four is needed for mnist_style32's
    step on a 2-core CPU (tests/test_determinism.py): TensorFlow's deterministic kernels; one
    inter-op thread (independent ops of the step running at once still changed the last bits);
    oneDNN's kernels off (`deterministic_problem`; the command line checks an explicit
    --deterministic before TensorFlow's import, this a run trained with it); and Grappler's
    arithmetic optimizer off: with the other three, it rewrote the step one of two ways from
    process to process (two results about equally often, with one intra-op thread too; off, 14
    runs of 14 alike, 2026-12-07)."""
    problem = deterministic_problem(os.environ)
    if problem:
        raise ConfigError(problem)
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:  # this process already ran TensorFlow (train.main called from a program)
        raise ConfigError(f"--deterministic must take effect before TensorFlow runs anything in this process: {error}")


def make_strategy(name: str, jit: bool, worker_timeout: float = 300.0) -> tf.distribute.Strategy:
    cluster = multiworker.read_cluster()
    if name == "multiworker" or (name == "auto" and cluster):
        if cluster is None:
            raise ConfigError("--strategy multiworker needs TF_CONFIG naming two or more tasks in each process "
                              "(see the README's multi-worker section)")
        if jit and not tf.config.list_physical_devices("GPU"):
            raise ConfigError("XLA (--jit, or jit: true in a resumed run's config.yaml) with several workers is not "
                              "supported on CPU devices (XLA has no CPU collectives: TensorFlow aborts at the first "
                              "step); pass --no-jit")
        return multiworker.make_strategy(cluster, worker_timeout)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        if jit and not gpus:
            raise ConfigError("XLA (--jit, or jit: true in a resumed run's config.yaml) with --strategy mirrored is not "
                              "supported on CPU devices (XLA cannot read variables across logical CPUs); pass --no-jit "
                              "or drop --strategy mirrored")
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def check_batch_size(phase, num_images: int, replicas: int, trained: bool = False) -> None:
    """The batch of `phase` (a schedule.Phase) fits the training set and splits over the replicas.
    A `trained` run (one with a checkpoint) keeps its batch sizes: the advice says what can change."""
    size = f"the batch size {phase.batch_size} (level {phase.level}, {phase.resolution}x{phase.resolution})"
    kept = ("this run keeps the batch sizes it was trained with (its step counter counts batches): train a new "
            "run (another --out) with a smaller --batch-size, or, for a run converted from an official "
            "checkpoint, convert it again with --batch-size")
    if phase.batch_size > num_images:
        images = f"{num_images} image{'s' if num_images != 1 else ''}"
        raise ConfigError(f"{size} is larger than the training set ({images}); "
                          + (f"train on at least {phase.batch_size} images; {kept}" if trained
                             else "pass a smaller --batch-size"))
    if phase.batch_size % replicas:
        raise ConfigError(f"{size} does not split evenly over {replicas} replicas; "
                          + (f"train on a number of replicas that divides it; {kept}" if trained
                             else f"pass a --batch-size that is a multiple of {replicas}"))


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


def default_run_dir(args) -> Path:
    """runs/<preset> or runs/<config file's stem>; a stem that is no plain name needs --out."""
    name = args.config.stem if args.config else preset_file(args.preset or DEFAULT_PRESET).stem
    if name.startswith(".") or not all(c.isalnum() or c in "_-." for c in name):
        raise ConfigError(f"cannot name a run directory after {args.config}; pass --out DIR")
    return Path("runs") / name


def train(args) -> int:
    run = RunDir(args.out or default_run_dir(args))
    if run.root.exists() and not run.root.is_dir():
        raise ConfigError(f"--out {run.root} is a file, not a run directory")
    if not run.config_file.is_file() and (foreign := run.foreign_entries()):
        raise ConfigError(f"--out {run.root} is not a run (no config.yaml) and holds other files "
                          f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); pass a new or empty directory")
    trained_with_jit = read_run_config(run).train.jit if run.config_file.is_file() else None
    config, resuming = resolve_config(args, run)
    t = config.train
    if t.deterministic:
        make_deterministic()  # before TensorFlow's runtime starts (its thread pools)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs anything.
    strategy = make_strategy(args.strategy, t.jit is True, args.worker_timeout)  # auto: decided by build_model
    cluster = multiworker.read_cluster() if multiworker.is_multiworker(strategy) else None
    chief = cluster is None or cluster.is_chief  # only the chief writes the run directory
    stop = StopOnSignal(multiworker.StopAgreement(cluster) if cluster else None)  # a signal to one worker stops all
    with contextlib.ExitStack() as signals, RunLock(run) as lock:
        if cluster:  # TensorFlow's coordination service catches SIGTERM from its start, and only logs it: take it
            signals.enter_context(stop)  # over now; a signal before the first step stops every worker after the second
        if chief and run.root.is_dir():
            lock.acquire(unless_read_only=True)  # before its checkpoints are read: another trainer may be saving or deleting them
        check_run_outside_data(run, config)
        source = open_run_images(config, path=args.data_path)  # a --data-path given is named as such when missing
        if resuming and (change := data_change(run, source)):
            raise ConfigError(f"{run.root}: {change}. Put the data back as it was, or train a new run (another --out)")
        set_precision(t.mixed_precision)
        set_training_graph_options()
        slow_precision = precision_cpu_warning(t.mixed_precision, cpu_flags(), bool(tf.config.list_physical_devices("GPU")))
        if slow_precision and chief:
            print(slow_precision, file=sys.stderr)
        keras.utils.set_random_seed(t.seed)
        phases = schedule.phases(config)
        restored = newest_intact_checkpoint(run)
        if cluster:  # before the restore, whose collectives a worker without that checkpoint would not join
            settings = config.to_dict()
            settings["data"]["contents"] = source.contents  # (multiworker.DATA_CONTENTS) None for MNIST
            multiworker.check_same_start(strategy, cluster, checkpoint_step(restored) if restored else 0,
                                         run.checkpoints, settings, schedule.total_steps(config, source.num_train))
        with strategy.scope():
            model = build_model(config)
            if restored:
                restore(model, restored)
            jit_if_auto = auto_jit_here(config)
        if resuming:
            check_jit_kept(model, trained_with_jit, t.jit, run)
            if args.jit is None and t.jit is True and chief and not draws_noise(model) and not jit_if_auto:
                print(f"note: this run records jit: true (jit: auto decides it at a run's start); for it as it is now "
                      f"(precision {t.mixed_precision}) jit: auto chooses no XLA, the faster here (README, Results): "
                      "add --no-jit", file=sys.stderr)
        start, total = model.step, schedule.total_steps(config, source.num_train)
        for phase, _, _ in schedule.segments(phases, start, total):  # the levels to train (a converted run: its top)
            check_batch_size(phase, source.num_train, strategy.num_replicas_in_sync, trained=restored is not None)
        workers = f"{cluster.num_workers} workers (this is {cluster.task}), " if cluster else ""
        print(f"data: {source.description}: {source.num_train} training images")
        if chief and (short := schedule.short_schedule_note(config, source.num_train)):
            print(short, file=sys.stderr)
        print(f"run: {run.root} ({'resuming at step ' + str(start) if resuming and start else 'new run'}); "
              f"{workers}{strategy.num_replicas_in_sync} replica(s), precision {t.mixed_precision}, jit {t.jit}"
              f"{', deterministic kernels' if t.deterministic else ''}")
        if start >= total:  # nothing to do, and the run's config.yaml stays as it was
            print(f"already trained for {start} steps (target {total}); pass a larger --steps or --epochs to continue")
            return 0
        if chief:
            try:
                run.root.mkdir(parents=True, exist_ok=True)
                lock.acquire()  # a new run's directory exists from here
                remove_killed_saves(run)  # first: a save killed on a full disk holds the space the next writes need
                save_config(config, run.config_file)
                record_data_contents(run, source)
            except OSError as exc:
                raise ConfigError(f"cannot write the run directory {run.root} ({exc.strerror})") from None
            if restored:
                set_aside_newer_checkpoints(run, restored)
            drop_log_rows_after(run.log_csv, model.step)
        print(f"training steps {start} -> {total}; checkpoint every {t.checkpoint_every} steps")

        monitor = TrainingMonitor(
            run, test_images=source.test_images, latent_dim=config.model.latent_dim, seed=t.seed,
            log_every=t.log_every, sample_every=t.sample_every, truncation_psi=t.truncation_psi) if chief else None
        verbose = (1 if sys.stdout.isatty() else 2) if args.verbose is None else args.verbose
        progress = None  # Keras's bar on a terminal, plain lines into a file; the chief's only
        if chief and verbose == 1:
            progress = ProgressBar()
        elif chief and verbose == 2:
            progress = ProgressLines(t.log_every, total)
        if not cluster:  # one process: from here on (until here a Ctrl-C stops it at once)
            signals.enter_context(stop)
        with checkpoint_saver(model, run, cluster, t.checkpoint_every, restored) as saver, \
                full_disk_explained(model, run, saver, chief):
            try:
                fit_schedule(model, config, source, phases, start, total,
                             callbacks=[c for c in (monitor, saver, progress, stop, LogWindows(t.log_every))
                                        if c is not None],
                             verbose=1 if chief and verbose == 1 else 0)
                saver.save()  # first: nothing in the grids can cost the last steps
                if monitor:
                    monitor.log_saved_step(model.step)
                    monitor.write_grids(model.step)
            except KeyboardInterrupt as exc:
                if model.step == start:
                    raise  # before the first step: nothing to save (and no model in the callbacks yet)
                if monitor:
                    monitor.log_saved_step(model.step)
                saver.save()
                print(f"\ninterrupted: saved step {model.step} to {run.checkpoints if chief else 'the chief'}; "
                      "re-run the same command to resume")
                return interrupted_exit_code(exc)
            except (OSError, tf.errors.OpError) as exc:
                unreadable = unreadable_data(exc)
                if unreadable:  # the step under way never ran: the model is at the last step done
                    saving = model.step > start and cluster is None  # several workers would have to save together
                    if saving:
                        if monitor:
                            monitor.log_saved_step(model.step)
                        saver.save()
                    saved = f"saved step {model.step} to {run.checkpoints}" if saving else f"stopped at step {model.step}"
                    raise ALAEError(f"{unreadable}; {saved}: once the data is readable again, re-run the same "
                                    "command to resume") from None
                raise
        written = f"samples in {run.samples}, checkpoints in {run.checkpoints}" if chief else "the chief wrote the run"
        print(f"done: {model.step} steps; {written}")
        return 0


@contextlib.contextmanager
def full_disk_explained(model, run, saver, chief):
    """A write that finds the disk full, in training or in the save after a Ctrl-C, SIGTERM or
    unreadable data, as one ALAEError naming the step, the file and the newest checkpoint; the
    failed save's part-written files are removed (never resumable, and they hold the space)."""
    try:
        yield
    except (OSError, tf.errors.OpError) as exc:
        if not out_of_disk_space(exc):
            raise
        if chief:
            remove_killed_saves(run)
        newest = (f"the newest checkpoint is {saver.newest} (step {saver.newest_step})" if saver.newest
                  else "no checkpoint was saved yet")
        raise ALAEError(f"no space left on the disk at step {model.step}, writing {written_file(exc, f'into {run.root}')}; "
                        f"{newest}: free some space, then re-run the same command to resume") from None


@contextlib.contextmanager
def checkpoint_saver(model, run, cluster, every, restored):
    """The CheckpointSaver into the run directory, or, on a worker other than the chief, into a
    temporary folder of its own, deleted afterwards (TensorFlow may need every worker in a save)."""
    if cluster is None or cluster.is_chief:
        yield CheckpointSaver(checkpoint_manager(model, run), every, restored)
        return
    run_id = hashlib.sha1(os.fsencode(run.root.resolve())).hexdigest()[:10]
    prefix = f"alae_tf-{run_id}-{cluster.task.replace(' ', '')}-"
    for killed in Path(tempfile.gettempdir()).glob(prefix + "*"):  # left by this task of this run, killed
        shutil.rmtree(killed, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield CheckpointSaver(checkpoint_manager(model, RunDir(Path(scratch)), max_to_keep=1), every)


def fit_schedule(model, config, source, phases, start, total, callbacks, verbose):
    """Train steps [start, total): one `fit` per level met (each level traces its own train step),
    split at epoch boundaries (an epoch is a pass over the data at the level's batch size)."""
    t = config.train
    for phase, begin, end in schedule.segments(phases, start, total):
        model.enter_phase(phase)
        print(schedule.describe_segment(phase, begin, end))
        epoch_steps = schedule.steps_per_epoch(source.num_train, phase.batch_size)
        for initial_epoch, epochs, segment_steps, offset in fit_segments(begin - phase.first_step, end - phase.first_step, epoch_steps):
            batches = training_batches(source, phase, start_step=phase.first_step + offset, latent_dim=config.model.latent_dim,
                                       seed=t.seed, num_styles=model.generator.num_styles,
                                       styles_in_use=model.generator.styles_per_level * (phase.level + 1),
                                       mixing_probability=t.style_mixing_prob, random_flip=config.data.random_flip)
            model.fit(batches, initial_epoch=initial_epoch, epochs=epochs, steps_per_epoch=segment_steps,
                      callbacks=callbacks, verbose=verbose, shuffle=False)


C_ESCAPE = re.compile(r"\\([0-7]{3}|.)")
C_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def unreadable_data(exc: Exception) -> str | None:
    """What made the training data unreadable during training, from the error that stopped the
    step, or None: a DataError of the image reader (which reaches here inside a TensorFlow error,
    as an assertion's "[DataError: ...]") or a damaged TFRecord file."""
    found = re.search(r"DataError: (.+?)\]?$", str(exc), re.MULTILINE)
    if found:  # TensorFlow prints a string tensor C-escaped: a\'b for a'b
        return C_ESCAPE.sub(lambda m: chr(int(m[1], 8)) if len(m[1]) == 3 else C_ESCAPES.get(m[1], m[1]), found[1]).strip()
    if isinstance(exc, tf.errors.DataLossError):
        return f"a data file is damaged ({first_line(exc)})"
    return None


def run(args) -> int:
    """Train as `args` (the command line, read by alae_tf.train) say; the errors an operator acts on
    become one line and exit code 2."""
    try:
        with process_settings_restored():
            return train(args)
    except KeyboardInterrupt as exc:  # before the first step (during it, train saves and returns 130, 143 or 129)
        print("\ninterrupted before training began; nothing was trained: re-run the same command to start",
              file=sys.stderr)
        return interrupted_exit_code(exc)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as exc:
        if not multiworker.read_cluster():
            raise
        print(f"error: a worker stopped answering ({first_line(exc)}); restart every worker with the same "
              "command to resume from the chief's newest checkpoint", file=sys.stderr)
        return 2
    except (tf.errors.ResourceExhaustedError, MemoryError):
        print("error: out of memory; lower --batch-size (or train.level_batch_sizes) or the model's size "
              "(model.latent_dim, hidden_dim, max_channels)", file=sys.stderr)
        return 2
