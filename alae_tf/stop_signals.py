"""Ctrl-C (SIGINT) and SIGTERM during training: stop at the end of a step, where nothing is half done.

Python raises KeyboardInterrupt wherever the main thread happens to be when the signal comes. In
the middle of TensorFlow's eager op dispatch (the sample grids run eagerly between steps) that
killed the trainer with SIGSEGV about once in 60 stops, instead of saving: seen in CI and
reproduced in a loop of SIGTERMs. Here the signal only sets a flag; the callback raises at the end
of the step under way, after the other callbacks have logged it.
"""

import contextlib
import os
import signal
import sys

import keras

from alae_tf.tensorflow_start import started_as_command


class Stopped(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop), handled as Ctrl-C is; the exit code says which."""


def signal_name(exc: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(exc, Stopped) else "Ctrl-C"


def interrupted_exit_code(exc: KeyboardInterrupt) -> int:
    return 128 + (signal.SIGTERM if isinstance(exc, Stopped) else signal.SIGINT)  # 143 or 130, as a shell reports them


@contextlib.contextmanager
def sigterm_raises_stopped():
    """While entered, SIGTERM raises `Stopped` wherever the main thread is, as Ctrl-C raises
    KeyboardInterrupt: for work without steps to wait for (evaluate's metrics, a conversion).
    Later SIGTERMs are ignored until the block is left, so that what the interrupted work keeps
    gets written; a SIGTERM the process was started ignoring stays ignored."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def raise_stopped(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped

    previous = signal.signal(signal.SIGTERM, raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def ignore_signals():
    """Ctrl-C and SIGTERM ignored from here on: for a process that stopped on one and is exiting."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


class StopOnSignal(keras.callbacks.Callback):
    """While entered (`with StopOnSignal() as stop:`), Ctrl-C or SIGTERM lets the step under way and
    its callbacks finish; then `on_train_batch_end` raises KeyboardInterrupt (`Stopped` for
    SIGTERM), for the trainer to save that step. Put it last among the callbacks. A second Ctrl-C
    raises at once (the grids of a large model take a minute); a repeated SIGTERM changes nothing
    (schedulers may send it more than once), nor does any signal once the trainer is saving. A
    signal the process was started ignoring stays ignored.

    With several workers (`agreement`: `multiworker.StopAgreement`) a signal to any one of them
    stops them all after the same step, the one after the step under way where it came (or where
    a SIGTERM that TensorFlow's own handler took before this one was in place came to light); those
    that got no signal raise `Stopped`."""

    def __init__(self, agreement=None):
        super().__init__()
        self.agreement = agreement
        self.received = None  # the first signal's number
        self.raised = False
        self.previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
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
        return "Ctrl-C" if self.received == signal.SIGINT else "SIGTERM"

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
        raise KeyboardInterrupt if self.received == signal.SIGINT else Stopped
