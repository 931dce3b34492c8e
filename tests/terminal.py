"""A command run on a pseudo-terminal of its own, as from a login shell over SSH, to hang it up."""

import os
import pty
import select
import subprocess
import sys
import time

# Run first in the child's own fresh process (no Python code runs between fork and exec): a new
# session whose controlling terminal is its standard input, then the command.
SESSION_LEADER = ("import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                  "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


class Terminal:
    """`Terminal(python_args, stderr=...)` starts `python PYTHON_ARGS` with the terminal as its
    standard input and output; `read_until(condition)` keeps reading what it shows (a full terminal
    would block the command); `hang_up()` closes it, as sshd does when the connection drops: the
    kernel sends SIGHUP to the command's session, and its writes to the terminal fail from then on."""

    def __init__(self, python_args: list[str], stderr, env=None):
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-c", SESSION_LEADER, *python_args], stdin=slave,
                                        stdout=slave, stderr=stderr, env=env)
        os.close(slave)
        self.shown = b""

    def read_until(self, condition, seconds: float) -> bytes:
        """Read until condition() is true, the command exits or `seconds` pass; all it has shown."""
        deadline = time.monotonic() + seconds
        while not condition() and self.process.poll() is None and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                self.shown += os.read(self.master, 65536)
        return self.shown

    def hang_up(self):
        os.close(self.master)
