"""Training callbacks: periodic checkpoints (and the divergence stop), scalar logs, image grids,
and the stop on Ctrl-C, SIGTERM or SIGHUP at the end of a step.

Both act on the model's own step counter (`model.step`, checkpointed with the weights), so
several `fit` calls and resumed runs share one axis.
"""

import csv
import datetime
import functools
import io
import os
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from alae_tf.atomic_file import write_text_atomically
from alae_tf.data.batches import faded_in, to_model_range, to_uint8
from alae_tf.errors import ALAEError
from alae_tf.grids import in_calls, interpolation_grid, style_mixing_grid
from alae_tf.inference import Sampler
from alae_tf.levels import mixing_ranges
from alae_tf.model import NONFINITE
from alae_tf.png import image_grid, save_png
from alae_tf.progress import rate_text
from alae_tf.run_dir import checkpoint_step, nonfinite_variables
from alae_tf.schedule import fading_blend
from alae_tf.stop_signals import SIGNAL_NAMES, STOP_SIGNALS, Stopped, hung_up_output_to_devnull
from alae_tf.tensorflow_start import started_as_command

NAMES_SHOWN = 3


class TrainingDiverged(ALAEError):
    """A loss or weight turned NaN or infinite; nothing of that step was saved."""


class StepCallback(keras.callbacks.Callback):
    """Calls `on_step(step, logs)` after every train batch with the model's step count."""

    def on_train_batch_end(self, batch, logs=None):
        self.on_step(self.model.step, logs or {})

    def on_step(self, step, logs):
        raise NotImplementedError


class LogWindows(StepCallback):
    """Resets the model's loss trackers after every `every`-th step, so that each log row and
    progress line holds the means over the steps since the previous one. Every worker runs it:
    the trackers are reduced across workers when read."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every

    def on_step(self, step, logs):
        if step % self.every == 0:
            self.model.reset_trackers()


class CheckpointSaver(StepCallback):
    """Saves every `every` steps, and when `save()` is called (the trainer calls it when the run
    ends, also on an interrupted run's way out; not at the end of each `fit` call: a run fits
    epoch by epoch, and a save there would push the grid's checkpoints out of the rotation),
    never a diverged model: on the step the train step flags a NaN or infinite loss or weight
    (`alae_tf.model.NONFINITE`), and before any save finds one in a checkpointed variable, it
    stops training with TrainingDiverged naming the newest good checkpoint. Put it after the
    TrainingMonitor: a step's log row is then written before its checkpoint, so a kill between
    the two leaves no gap in log.csv (the resumed run drops the rows after its step and logs
    them again).

    `restored`: the checkpoint the run resumed from (None for a new run)."""

    def __init__(self, manager: tf.train.CheckpointManager, every: int, restored: str | None = None):
        super().__init__()
        self.manager = manager
        self.every = every
        self.newest = restored
        self.newest_step = None if restored is None else checkpoint_step(restored)

    def on_step(self, step, logs):
        if logs.get(NONFINITE):
            bad = [name for name, value in logs.items() if name != NONFINITE and not np.isfinite(value)]
            self.stop(step, f"{', '.join(bad)} not finite" if bad else "weights not finite")
        if step % self.every == 0:
            self.save()

    def save(self):
        step = self.model.step  # the weights' own step, also after an interrupt
        if step == self.newest_step:
            return
        bad = nonfinite_variables(self.model)
        if bad:
            more = f" and {len(bad) - NAMES_SHOWN} more" if len(bad) > NAMES_SHOWN else ""
            self.stop(step, f"{', '.join(bad[:NAMES_SHOWN])}{more} not finite")
        self.newest, self.newest_step = self.manager.save(checkpoint_number=step), step

    def stop(self, step, what):
        good = (f"the newest good checkpoint is {self.newest} (step {self.newest_step})" if self.newest
                else "no checkpoint was saved before it")
        raise TrainingDiverged(f"training diverged at step {step} ({what}); nothing of it was saved; {good}. "
                               "Resuming would repeat the same steps: train a new --out with a lower "
                               "train.learning_rate")


class TrainingMonitor(StepCallback):
    """Scalars to TensorBoard and `log.csv` every `log_every` steps; image grids (EMA nets) to
    `samples/<name>_<step>.png` and TensorBoard every `sample_every` steps and when the trainer
    calls `write_grids` at the run's end:
    samples, reconstructions, interpolations (between mapped latents and between encodings of
    held-out images) and, for generators with several style inputs, style_mixing_<range> (see
    `alae_tf.grids`). All through `Sampler.from_model` at the level being trained.

    `test_images(resolution, count)` gives held-out uint8 images at that level's resolution."""

    MIXING_SOURCES, MIXING_DESTINATIONS = 5, 4  # a 6 x 5 grid per range
    INTERPOLATION_ROWS, INTERPOLATION_STEPS = 3, 8  # rows of each kind, 10 columns with the ends

    def __init__(self, run, *, test_images, latent_dim, seed, log_every, sample_every, truncation_psi=1.0, columns=8):
        super().__init__()
        self.run = run
        self.log_every = log_every
        self.sample_every = sample_every
        self.columns = columns
        self.truncation_psi = truncation_psi
        self.fixed_z = tf.random.stateless_normal([columns * columns, latent_dim], seed=[seed, 12345])
        self.mixing_z = tf.random.stateless_normal(
            [self.MIXING_SOURCES + self.MIXING_DESTINATIONS, latent_dim], seed=[seed, 23456])
        self.interpolation_z = tf.random.stateless_normal([2 * self.INTERPOLATION_ROWS, latent_dim], seed=[seed, 34567])
        # Read once per resolution, not at every grid (a folder source decodes files).
        self.test_images = functools.lru_cache(maxsize=None)(test_images)
        self.writer = tf.summary.create_file_writer(str(run.logs))
        self.logged_step = None
        self.last_logs = (None, {})  # (step, its logs): what log_saved_step writes

    def on_step(self, step, logs):
        if logs.get(NONFINITE):
            return  # a diverged step: the CheckpointSaver stops the run
        self.last_logs = (step, logs)
        if step % self.log_every == 0:
            self.log_scalars(step, logs)
        if step % self.sample_every == 0:
            self.write_grids(step)

    def log_saved_step(self, step):
        """The log row of the step the trainer saves as it stops (done, interrupted, or its data
        unreadable), whatever the log interval: the state its checkpoint holds is logged (a run
        shorter than the interval wrote no log.csv), and a row an interrupt cut off is not lost
        (resumed after that step, the run would never log it). The row holds the step's logs; when
        an interrupt cut off its callbacks, what they would have held: the model's loss trackers,
        except under several workers, where reading them is a collective the others do not join
        (the chief alone logs: it failed, or hung until --worker-timeout), and the row is missing."""
        logged_step, logs = self.last_logs
        if step == self.logged_step:
            return
        if step == logged_step:
            self.log_scalars(step, logs)
        elif not isinstance(self.model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            self.log_scalars(step, {name: tracker.result() for name, tracker in self.model.trackers.items()})

    def log_scalars(self, step, logs):
        # Columns by name (Keras's logs come so ordered; the trackers of log_saved_step do not).
        values = {name: float(logs[name]) for name in sorted(logs) if name != NONFINITE}
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        new_file = not self.run.log_csv.exists()
        # Buffered until close, so one write() call per row: a kill leaves whole rows.
        with self.run.log_csv.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(["step", *values])
            writer.writerow([step, *values.values()])
        self.logged_step = step

    def write_grids(self, step):
        # A level fading in is drawn at the blend being trained, its held-out images blended as the
        # training images are (at blend 1 the barely trained new level looked like a divergence).
        blend = None if self.model.phase is None else fading_blend(self.model.phase, step)
        sampler = Sampler.from_model(self.model, level=self.model.level, blend=blend)
        noise = sampler.noise(len(self.fixed_z), 0)  # 64 samples in one call took ~38 GB at 1024x1024
        samples = in_calls(sampler, len(self.fixed_z), lambda rows: sampler.generate(
            self.fixed_z[rows], self.truncation_psi, noise=[n[rows] for n in noise]))
        test_images = to_model_range(self.test_images(sampler.image_shape[0], self.columns * self.columns // 2))
        if blend is not None:
            test_images = faded_in(test_images, blend)
        grids = {"samples": image_grid(samples, self.columns)}
        if len(test_images):  # data prepared with --test-count 0 holds none
            noise = sampler.noise(len(test_images), 0)
            reconstructions = in_calls(sampler, len(test_images), lambda rows: sampler.reconstruct(
                test_images[rows], noise=[n[rows] for n in noise]))
            originals = to_uint8(test_images).numpy()
            # Rows alternate: originals, then their reconstructions underneath.
            pairs = np.concatenate(
                [np.concatenate([originals[i : i + self.columns], reconstructions[i : i + self.columns]])
                 for i in range(0, len(originals), self.columns)]
            )
            grids["reconstructions"] = image_grid(pairs, self.columns)
        grids.update(self.latent_grids(sampler, test_images))
        with self.writer.as_default(step=step):
            for name, grid in grids.items():
                save_png(grid, self.run.samples / f"{name}_{step:07d}.png")
                tf.summary.image(name, grid[np.newaxis], max_outputs=1)
        self.writer.flush()

    def latent_grids(self, sampler, test_images):
        """Interpolations and style mixing at the sampler's level; a few dozen images each."""
        rows = self.INTERPOLATION_ROWS
        pairs = min(rows, len(test_images) // 2)
        image_pairs = (test_images[0 : 2 * pairs : 2], test_images[1 : 2 * pairs : 2]) if pairs else None
        z_pairs = (self.interpolation_z[:rows], self.interpolation_z[rows:])
        grids = {"interpolations": interpolation_grid(sampler, z_pairs, image_pairs, steps=self.INTERPOLATION_STEPS,
                                                      truncation_psi=self.truncation_psi)}
        if mixing_ranges(sampler.level, sampler.generator.styles_per_level):
            sources, destinations = self.mixing_z[: self.MIXING_SOURCES], self.mixing_z[self.MIXING_SOURCES :]
            mixing = style_mixing_grid(sampler, sources, destinations, truncation_psi=self.truncation_psi)
            grids.update({f"style_mixing_{name}": grid for name, grid in mixing.items()})
        return grids


class ProgressLines(StepCallback):
    """One plain line every `every` steps and at step `total`: the step, the scalars (the means
    over the steps since the last line, as log.csv has them), the speed since the last line and the time left. For output that goes to a
    file (nohup, a batch scheduler, a container's log), where Keras's progress bar is a stream of
    backspaces and colour codes redrawn 20 times a second (~100 kB per 300 MNIST steps)."""

    def __init__(self, every: int, total: int):
        super().__init__()
        self.every, self.total = every, total
        self.last = None  # (step, time) the speed is measured from
        self.rate = None  # the last speed shown
        self.fit_began, self.batch_began = False, 0.0

    def on_train_begin(self, logs=None):
        self.fit_began = True

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_began = time.monotonic()

    def on_step(self, step, logs):
        now = time.monotonic()
        if self.last is None:  # the first step of this process: tracing, compiling; time from its end
            self.fit_began = False
            self.last = (step, now)
        elif self.fit_began:  # a fit call's first step (after a level change: the step traced anew) is left out
            self.fit_began = False
            self.last = (self.last[0] + 1, self.last[1] + (now - self.batch_began))
        if step % self.every and step != self.total:
            return
        if step > self.last[0]:
            self.rate = (step - self.last[0]) / max(now - self.last[1], 1e-9)
        left = "-" if self.rate is None else datetime.timedelta(seconds=round((self.total - step) / self.rate))
        speed = "-" if self.rate is None else rate_text(self.rate)
        scalars = "  ".join(f"{name} {float(value):.4g}" for name, value in without_flag(logs).items())
        print(f"step {step}/{self.total}  {scalars}  {speed} steps/s  ETA {left}", flush=True)
        self.last = (step, now)


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar (`--verbose 1`) without the divergence flag (`NONFINITE`), which reads
    `nonfinite: 0.0000e+00` there while training is sound; a diverged run stops with its own message."""

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, without_flag(logs))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, without_flag(logs))


def without_flag(logs):
    return None if logs is None else {name: value for name, value in logs.items() if name != NONFINITE}


def drop_log_rows_after(log_csv: Path, step: int) -> None:
    """Keep log.csv's header and its complete rows up to `step` (a run resumed from step S logs
    the steps after S again; a kill mid-write can leave a torn last row); rewritten atomically."""
    if not log_csv.is_file():
        return
    with log_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, kept = rows[0], rows[:1]
    for row in rows[1:]:
        if len(row) == len(header) and row[0].isdigit() and int(row[0]) <= step and all(map(_is_number, row[1:])):
            kept.append(row)
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)
    write_text_atomically(log_csv, text.getvalue())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class StopOnSignal(keras.callbacks.Callback):
    """While entered (`with StopOnSignal() as stop:`), Ctrl-C, SIGTERM or SIGHUP (the terminal or
    SSH session hung up: its output goes to /dev/null from then on) lets the step under way and its
    callbacks finish; then `on_train_batch_end` raises KeyboardInterrupt (`Stopped` for SIGTERM and
    SIGHUP), for the trainer to save that step. Put it last among the callbacks. A second Ctrl-C
    raises at once (the grids of a large model take a minute); a repeated SIGTERM or SIGHUP changes
    nothing (schedulers may send it more than once), nor does any signal once the trainer is saving.
    A signal the process was started ignoring (`nohup`'s SIGHUP) stays ignored.

    With several workers (`agreement`: `multiworker.StopAgreement`) a signal to any one of them
    stops them all after the same step, the one after the step under way where it came (or where
    a SIGTERM that TensorFlow's own handler took before this one was in place came to light); those
    that got no signal raise `Stopped`.

    Why not let Python raise KeyboardInterrupt wherever the main thread is when the signal comes: in
    the middle of TensorFlow's eager op dispatch (the sample grids run eagerly between steps) that
    killed the trainer with SIGSEGV about once in 60 stops, instead of saving (seen in CI and
    reproduced in a loop of SIGTERMs)."""

    def __init__(self, agreement=None):
        super().__init__()
        self.agreement = agreement
        self.received = None  # the first signal's number
        self.raised = False
        self.previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, *STOP_SIGNALS):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # as a shell leaves it for a script's background job
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc_info):
        # A command that is stopping ignores repeats from here to its exit: restored, the default
        # SIGTERM killed it (-15, not 143) while TensorFlow released the trainer's objects. An app
        # calling the trainer gets its own handlers back.
        stopping = (self.received is not None or self.raised) and started_as_command()
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_IGN if stopping else handler)

    def handle(self, signum, frame):
        if signum == signal.SIGHUP:
            hung_up_output_to_devnull()  # before the line below, and the trainer's prints while it saves
        # os.write, not print: print from a handler fails if the main thread was inside a print.
        if self.raised:
            os.write(2, b"\nsaving the checkpoint: a moment\n")
        elif self.received is None:
            self.received = signum
            sooner = "Ctrl-C again stops sooner" if signum == signal.SIGINT else "a SIGINT (Ctrl-C) stops sooner"
            when = "every worker after the next step" if self.agreement else "after the step under way"
            os.write(2, f"\n{self.received_name()}: stopping {when}, then saving it ({sooner})\n".encode())
        elif signum == signal.SIGINT:
            self.stop()

    def received_name(self) -> str:
        return SIGNAL_NAMES[self.received]

    def on_train_batch_end(self, batch, logs=None):
        if self.raised:
            return
        if self.agreement is None:
            if self.received is not None:
                self.stop()
            return
        step = self.model.step
        if self.received is not None:
            self.agreement.propose(step + 1, f"{self.received_name()} on {self.agreement.cluster.task}")
        elif self.agreement.caught_by_tensorflow:
            self.agreement.propose(step + 1, self.agreement.caught_by_tensorflow)
        agreed = self.agreement.agreed
        if agreed is not None and step >= agreed.step:
            if self.received is None:
                print(f"\n{agreed.reason}: every worker stops after step {agreed.step}, then saves it", file=sys.stderr)
            self.stop()

    def stop(self):
        self.raised = True
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped() if self.received is None else Stopped(self.received)  # no signal here: another worker's, as SIGTERM
