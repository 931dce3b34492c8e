"""Ctrl-C, SIGTERM and SIGHUP as the commands without steps take them (alae_tf/stop_signals.py);
training's stop after a step is tested in test_train_cli.py."""

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios

import pytest

from alae_tf.stop_signals import Stopped, interrupted_exit_code, signal_name, stop_signals_raise_stopped


@pytest.mark.parametrize("signum, name, code", [(signal.SIGTERM, "SIGTERM", 143), (signal.SIGHUP, "SIGHUP", 129)])
def test_sigterm_and_sighup_raise_stopped_once_and_the_handlers_come_back(signum, name, code):
    before = {each: signal.getsignal(each) for each in (signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Stopped) as raised:
        with stop_signals_raise_stopped():
            try:
                os.kill(os.getpid(), signum)  # Python runs the handler before the next line
            finally:  # what the interrupted work keeps is written with both ignored
                during = {each: signal.getsignal(each) for each in before}
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGHUP)
    assert during == {each: signal.SIG_IGN for each in before}
    assert (signal_name(raised.value), interrupted_exit_code(raised.value)) == (name, code)
    assert (signal_name(KeyboardInterrupt()), interrupted_exit_code(KeyboardInterrupt())) == ("Ctrl-C", 130)
    assert {each: signal.getsignal(each) for each in before} == before


def test_a_sighup_the_process_was_started_ignoring_stays_ignored():
    """`nohup python -m alae_tf.evaluate ...` goes on when the terminal closes."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_raise_stopped():
            os.kill(os.getpid(), signal.SIGHUP)
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


HUNG_UP_COMMAND = """
import sys, time
from alae_tf.stop_signals import stop_signals_raise_stopped, interrupted_exit_code
try:
    with stop_signals_raise_stopped():
        print("working", flush=True)
        time.sleep(60)
except KeyboardInterrupt as exc:
    print("stopped: what was done is kept", flush=True)  # to the hung-up terminal: no OSError
    print("error output", file=sys.stderr, flush=True)
    sys.exit(interrupted_exit_code(exc))
"""


def test_a_hang_up_sends_the_terminal_output_to_devnull_and_leaves_a_pipe_alone():
    """An SSH session that drops hangs up the command's terminal: the kernel sends SIGHUP, and each
    write to that terminal fails from then on (EIO), the last lines of a stop included."""
    master, slave = pty.openpty()

    def terminal_of_its_own():  # as a login shell's command: the pty is its controlling terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen([sys.executable, "-c", HUNG_UP_COMMAND], stdin=slave, stdout=slave,
                               stderr=subprocess.PIPE, preexec_fn=terminal_of_its_own, text=True)
    os.close(slave)
    try:
        seen = b""
        while b"working" not in seen:
            assert select.select([master], [], [], 60)[0], "the command printed nothing"
            seen += os.read(master, 1000)
        os.close(master)  # the hang-up: the kernel sends SIGHUP to the terminal's session
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 129, stderr
    assert stderr == "error output\n"  # a pipe, not the terminal: left as it was
