"""Ctrl-C (SIGINT) and SIGTERM in the project's commands: SIGTERM raised as `Stopped` (a
KeyboardInterrupt), and the exit codes a shell expects. Training's stop at the end of a step is
`alae_tf.callbacks.StopOnSignal`."""

import contextlib
import signal


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
