"""Ctrl-C, SIGTERM and SIGHUP as the commands without steps take them (alae_tf/stop_signals.py);
training's stop after a step is tested in test_train_cli.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from terminal import Terminal

from alae_tf.stop_signals import Stopped, interrupted_exit_code, signal_name, stop_signals_raise_stopped

PHOTO = Path(__file__).parent / "fixtures" / "faces" / "grace_hopper.jpg"


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


@pytest.mark.parametrize("as_command", [True, False])
def test_a_command_that_was_stopped_ignores_repeated_signals_until_it_exits(as_command, monkeypatch):
    """Restored when the block was left, the default action of a repeated SIGTERM or SIGHUP (a
    scheduler repeats it) killed evaluate and export while they wrote their results or TensorFlow
    was torn down: -15 or -1, not 143 or 129. An app gets its own handlers back."""
    from alae_tf import stop_signals

    monkeypatch.setattr(stop_signals, "started_as_command", lambda: as_command)
    before = {each: signal.getsignal(each) for each in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(Stopped):
            with stop_signals_raise_stopped():
                os.kill(os.getpid(), signal.SIGTERM)
        after = {each: signal.getsignal(each) for each in before}
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)
    assert after == ({each: signal.SIG_IGN for each in before} if as_command else before)
    with stop_signals_raise_stopped():  # no signal: the handlers come back in either case
        during = {each: signal.getsignal(each) for each in before}
    assert all(handler not in before.values() for handler in during.values())
    assert {each: signal.getsignal(each) for each in before} == before


def test_a_stopped_command_repeatedly_signalled_exits_with_its_code(tmp_path):
    """As a scheduler may: SIGTERM again and again until the command exits (align_faces: no
    TensorFlow to wait for)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for number in range(40):
        (photos / f"{number:02d}.jpg").write_bytes(PHOTO.read_bytes())
    process = subprocess.Popen([sys.executable, "-m", "alae_tf.align_faces", str(photos), "--out", str(tmp_path / "out"),
                                "--size", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("[1/40] ")  # inside the command's handling of signals
        while process.poll() is None:
            process.send_signal(signal.SIGTERM)
            time.sleep(0.01)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr
    assert stderr.endswith(f"interrupted (SIGTERM); the faces written so far are in {tmp_path / 'out'}\n")
    assert all(path.suffix == ".png" for path in (tmp_path / "out").iterdir())  # no partial file


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
    terminal = Terminal(["-c", HUNG_UP_COMMAND], stderr=subprocess.PIPE)
    try:
        assert b"working" in terminal.read_until(lambda: b"working" in terminal.shown, 60)
        terminal.hang_up()
        _, stderr = terminal.process.communicate(timeout=60)
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
    assert terminal.process.returncode == 129, stderr
    assert stderr == b"error output\n"  # a pipe, not the terminal: left as it was
