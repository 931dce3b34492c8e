"""The argument parser of every command of the project (python -m alae_tf.train, .evaluate, .edit,
.project, .convert, .data.prepare, .metrics.train_mnist_classifier, python -m export and
python -m serving.http) and of the benchmarks' scripts. Here, beside the other definitions both
packages share, because serving runs without the alae_tf package; it imports nothing heavy:
--help is answered at once."""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


class CommandParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one `error:` line naming --help (exit 2) instead
    of the usage and the error (15 lines for alae_tf.train); that does not abbreviate options
    (`train --step 3` trained as `--steps 3`, and `edit mix --out x.png` took --out for --out-dir
    and wrote a folder x.png: a misremembered flag should be refused, not guessed); and that reads
    a negative number in exponent form (`--strengths -1e-1 2`) as a number, which Python before
    3.13 took for an option. Every argument must be known, parse_known_args too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._refuse_unknown_flags(args)
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # here, not in parse_args: a subcommand's parser then names its own --help
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def _refuse_unknown_flags(self, args):
        """An unknown --flag is named first: argparse named missing required arguments before it
        (`project --bogus` asked for --run and --images, and named --bogus only once they were
        given). Up to a subcommand's name: its own parser checks the arguments after it. --help
        wins, as in argparse, and an argument with a space is a value ("--a b.png"), as there."""
        subcommands = {name: parser for action in self._actions if isinstance(action, argparse._SubParsersAction)
                       for name, parser in action.choices.items()}
        end = next((i for i, arg in enumerate(args) if arg == "--" or arg in subcommands), len(args))
        if {"-h", "--help"} & set(args[:end]):
            return
        for arg in args[:end]:
            flag = arg.partition("=")[0]
            if arg.startswith("--") and " " not in arg and flag not in self._option_string_actions:
                where = ""
                if any(flag in parser._option_string_actions for parser in subcommands.values()):
                    command = args[end] if end < len(args) and args[end] in subcommands else "COMMAND"
                    where = f"; it goes after the command's name: {self.prog} {command} {flag} ..."
                self.error(f"unrecognized arguments: {arg}{where}")

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def number(kind, low, inclusive=True, high=None):
    """An argparse type: a finite `kind` (int or float) >= low (> low when not inclusive), and <= high
    when given; the one definition of the commands' numeric arguments."""
    what = "an integer" if kind is int else "a finite number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive) or (high is not None and value > high):
            upper = "" if high is None else f" and <= {high}"
            raise argparse.ArgumentTypeError(f"{text} must be {what} {'>=' if inclusive else '>'} {low}{upper}")
        return value
    return parse


def folder_to_write(text: str) -> Path:
    """An argparse type: the path of a folder a command will make or write into, refused at once
    when it, or a folder above it, is a file, or when the nearest existing folder cannot be written
    (the benchmarks' --work and --out met it minutes later, as a traceback)."""
    path = Path(text).expanduser()
    existing = next(folder for folder in [path, *path.absolute().parents] if folder.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder" if existing == path else
                                         f"{text}: {existing} above it is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: this user cannot write in {existing}")
    return path


def install_extra(extra: str) -> str:
    """How to install one of the project's extras (setup.py), in a checkout or from a wheel."""
    return f'pip install -e ".[{extra}]" in the alae_tf checkout (from a wheel: pip install "WHEEL_FILE[{extra}]")'


def python_with(*modules: str):
    """An argparse type: a Python interpreter that has `modules` (found, not imported: torch takes
    seconds), e.g. the benchmarks' --torch-python, which otherwise failed minutes later in a child."""
    def checked(program: str) -> str:
        if not shutil.which(program):
            raise argparse.ArgumentTypeError(f"{program}: no such program")
        find = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
        try:
            done = subprocess.run([program, "-c", find, *modules], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise argparse.ArgumentTypeError(f"{program} does not run as Python ({exc})") from None
        if done.returncode:
            raise argparse.ArgumentTypeError(f"{program} does not run as Python ({done.stderr.strip()[-200:]})")
        if missing := done.stdout.split():
            raise argparse.ArgumentTypeError(f"{program} cannot import {', '.join(missing)} (needed: {', '.join(modules)})")
        return program
    return checked
