"""The argument parser of every command of the project (python -m alae_tf.train, .evaluate, .edit,
.project, .convert, .data.prepare, .metrics.train_mnist_classifier, python -m export and
python -m serving.http). Imports nothing heavy: --help is answered before TensorFlow loads."""

import argparse
import re
import sys


class CommandParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one `error:` line naming --help (exit 2) instead
    of the usage and the error (43 lines for alae_tf.train); that does not abbreviate options
    (`train --step 3` trained as `--steps 3`, and `edit mix --out x.png` took --out for --out-dir
    and wrote a folder x.png: a misremembered flag should be refused, not guessed); and that reads
    a negative number in exponent form (`--strengths -1e-1 2`) as a number, which Python before
    3.13 took for an option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)
