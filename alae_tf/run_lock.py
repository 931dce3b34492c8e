"""One training process per run directory.

Two `python -m alae_tf.train` on the same `--out` (the command started twice, or a second
terminal) would each train, interleave their checkpoints and `log.csv` rows, and each delete what
it takes for the other's half-finished saves. The training process holds an exclusive `flock` on
`OUT/train.lock` while it runs; a second one is refused with one line naming the holder. The
kernel releases the lock when its holder exits, however it exits (a `kill -9` leaves no stale
lock), and the file's text (pid and host) is only for the message. Evaluation, editing and export
only read a run and take no lock; `python -m alae_tf.project` takes the same kind of lock on its
output folder (`take_lock`).
"""

import errno
import fcntl
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO

from alae_tf.errors import ConfigError
from alae_tf.run_dir import RunDir


def take_lock(path: Path, busy: Callable[[str], str]) -> IO:
    """`path` opened and exclusively flock'ed, with this process's pid and host written into it
    (for the message of the next one); ConfigError(busy(that holder's text)) when another process
    holds it, OSError when it cannot be opened. Closing the file releases the lock."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(busy(holder)) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


class RunLock:
    """A context manager: `acquire()` inside it once the run directory exists (a new run creates
    it only once nothing can refuse the command any more); released on leaving, however."""

    def __init__(self, run: RunDir):
        self.run = run
        self._file = None

    def acquire(self, unless_read_only=False) -> None:
        """`unless_read_only`: a run directory this process cannot write (an archived run) is left
        unlocked, so that a command with nothing to train still says so; the acquire() before the
        first write refuses it."""
        if self._file is not None:
            return
        try:
            self._file = take_lock(self.run.lock_file, lambda holder: (
                f"{self.run.root} is being trained by {holder}; wait for it to finish, or stop it (Ctrl-C saves a "
                "checkpoint) and re-run this command to resume"))
        except OSError as exc:
            if unless_read_only and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return
            raise ConfigError(f"cannot write the run directory {self.run.root} ({exc.strerror})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._file is not None:
            self._file.close()  # closing the last descriptor releases the flock
            self._file = None
