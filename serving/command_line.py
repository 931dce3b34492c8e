"""The argument parser of every command of the project (python -m alae_tf.train, .evaluate, .edit,
.project, .convert, .data.prepare, .metrics.train_mnist_classifier, python -m export and
python -m serving.http). Here, beside the other definitions both packages share, because serving
runs without the alae_tf package; it imports nothing heavy: --help is answered at once."""

import argparse
import re
import sys


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
        # argparse names missing required arguments before unknown flags: `project --bogus` said
        # "the following arguments are required: --run, --images", then, once they were given,
        # that --bogus is unknown. An unknown --flag is named first (a subcommand's own parser
        # checks the arguments after its name).
        args = sys.argv[1:] if args is None else list(args)
        subcommands = {name for action in self._actions if isinstance(action, argparse._SubParsersAction)
                       for name in action.choices}
        before = args[:next((i for i, arg in enumerate(args) if arg == "--" or arg in subcommands), len(args))]
        if not {"-h", "--help"} & set(before):  # help wins, as in argparse
            for arg in before:  # (with a space, argparse takes it for a value: "--a b.png")
                if arg.startswith("--") and " " not in arg and arg.partition("=")[0] not in self._option_string_actions:
                    self.error(f"unrecognized arguments: {arg}")
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # here, not in parse_args: a subcommand's parser then names its own --help
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)
