"""Ctrl-C (SIGINT), SIGTERM and SIGHUP in the project's commands: SIGTERM and SIGHUP raised as
`Stopped` (a KeyboardInterrupt), and the exit codes a shell expects. Training's stop at the end of
a step is `alae_tf.callbacks.StopOnSignal`."""

import contextlib
import errno
import os
import signal
import termios

from alae_tf.tensorflow_start import started_as_command

# Beside Ctrl-C: a scheduler's, `docker stop`'s or `kill`'s stop, and the hang-up of the terminal
# the command runs in (an SSH session that drops, a closed terminal window).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is; the exit code says which."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def signal_name(exc: KeyboardInterrupt) -> str:
    return SIGNAL_NAMES[exc.signum] if isinstance(exc, Stopped) else "Ctrl-C"


def interrupted_exit_code(exc: KeyboardInterrupt) -> int:
    """130, 143 or 129, as a shell reports a Ctrl-C, a SIGTERM or a SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def hung_up_output_to_devnull():
    """Standard output and error that were a terminal that hung up go to /dev/null from here on:
    every write to such a terminal fails (EIO), and the lines printed while the command stops and
    saves would end it with an OSError instead. Output to a file, a pipe or a live terminal is left
    as it is."""
    for fd in (1, 2):
        try:
            termios.tcgetattr(fd)
        except termios.error as exc:
            if exc.args[0] == errno.EIO:  # a file or a pipe: ENOTTY
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)


@contextlib.contextmanager
def stop_signals_raise_stopped():
    """While entered, SIGTERM and SIGHUP raise `Stopped` wherever the main thread is, as Ctrl-C
    raises KeyboardInterrupt: for work without steps to wait for (evaluate's metrics, a
    conversion). Later ones are ignored, so that what the interrupted work keeps gets written: in
    a command until it exits (a scheduler may repeat its SIGTERM, and the default action killed
    evaluate and export while they wrote their results or TensorFlow was torn down: -15, not 143),
    in an app until the block is left. A signal the process was started ignoring (`nohup` ignores
    SIGHUP) stays ignored."""
    handled = [signum for signum in STOP_SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
    received = []

    def raise_stopped(signum, frame):
        received.append(signum)
        for each in handled:
            signal.signal(each, signal.SIG_IGN)
        if signum == signal.SIGHUP:
            hung_up_output_to_devnull()
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, raise_stopped) for signum in handled}
    try:
        yield
    finally:
        stopping = received and started_as_command()
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if stopping else handler)


def ignore_signals():
    """Ctrl-C, SIGTERM and SIGHUP ignored from here on: for a process that stopped on one and is exiting."""
    for signum in (signal.SIGINT, *STOP_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)
