"""Named layer ranges of a generator: which style inputs an edit or a mix touches.

"all" is every style input; "coarse", "middle" and "fine" are `alae_tf.grids.mixing_ranges` at
the sampler's level (those that are not empty). A generator with a single style input in use
(the MLP) has nothing to split: there every name means "all". Exports list the same mapping in
their metadata ("layer_ranges"), so the ONNX app API resolves names without this code.
"""

from alae_tf.errors import ALAEError
from alae_tf.levels import MIXING_RANGES, mixing_ranges

ALL = "all"
NAMES = (ALL, *MIXING_RANGES)


def layer_ranges(sampler) -> dict[str, tuple[int, int]]:
    """{name: (start, stop)} of the sampler's generator; style inputs [start, stop)."""
    every = (0, sampler.num_styles)
    split = mixing_ranges(sampler.level, sampler.generator.styles_per_level)
    if not split:
        return {name: every for name in NAMES}
    return {ALL: every, **split}


def mixing_range_names(ranges: dict[str, tuple[int, int]]) -> list[str]:
    """The ranges a mixing figure shows: coarse/middle/fine where they differ from "all", else just "all"."""
    return [name for name in MIXING_RANGES if name in ranges and ranges[name] != ranges[ALL]] or [ALL]


def parse_layer_range(text: str, ranges: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """A range name of `ranges`, or START:STOP style-input indices (stop exclusive)."""
    if text in ranges:
        return ranges[text]
    start, colon, stop = text.partition(":")
    if colon and start.strip().isdigit() and stop.strip().isdigit():
        start, stop = int(start), int(stop)
        if start < stop <= ranges[ALL][1]:
            return start, stop
        raise ALAEError(f"layer range {text}: expected START:STOP with 0 <= START < STOP <= {ranges[ALL][1]}")
    raise ALAEError(f"unknown layer range {text!r}; this generator has {', '.join(ranges)} or START:STOP "
                    f"(style inputs 0..{ranges[ALL][1] - 1})")
