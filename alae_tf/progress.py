"""Progress of long work (encoding, metrics, projection, prepare): Keras's progress bar on a
terminal; where the output goes to a file (nohup, a batch scheduler, a container's log), a plain
line at every tenth of the way, since the bar redraws itself there with backspaces and colour codes
20 times a second (Keras takes every POSIX system for a terminal)."""

import datetime
import sys
import time

import keras

LINES = 10  # plain lines per piece of work


def progress_bar(target: int, unit_name: str = "step", stateful_metrics=None, verbose: bool = True):
    """An object with keras.utils.Progbar's `add(count)` and `update(current, values)`."""
    if verbose and not sys.stdout.isatty():
        return ProgressLog(target, unit_name)
    return keras.utils.Progbar(target, unit_name=unit_name, stateful_metrics=stateful_metrics, verbose=int(verbose))


class ProgressLog:
    """Prints `current/target units  rate units/s  ETA h:mm:ss  name value ...` each time the work
    passes a tenth of `target`; `values` are shown as given (the last ones)."""

    def __init__(self, target: int, unit_name: str):
        self.target, self.unit_name = target, unit_name
        self.seen, self.started, self.next_tenth = 0, time.monotonic(), 1

    def add(self, count, values=None):
        self.update(self.seen + count, values)

    def update(self, current, values=None):
        self.seen = current
        if self.target <= 0 or current * LINES < self.next_tenth * self.target:
            return
        self.next_tenth = current * LINES // self.target + 1
        rate = current / max(time.monotonic() - self.started, 1e-9)
        left = datetime.timedelta(seconds=round(max(self.target - current, 0) / rate))
        shown = "".join(f"  {name} {float(value):.4g}" for name, value in values or [])
        print(f"{current}/{self.target} {self.unit_name}s  {rate_text(rate)} {self.unit_name}s/s  ETA {left}{shown}", flush=True)


def rate_text(rate: float) -> str:
    """3 significant digits, without an exponent: 0.687, 4.17, 2,740."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"
