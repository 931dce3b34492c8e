"""Resolution levels, shared by config validation, the networks, the schedule and the data.

A growing (progressive) model has one level per power-of-two resolution from 4x4 up to its
full resolution: level 0 is 4x4, each level doubles the side. A model that does not grow has
a single level at its full resolution. Imports nothing, so every layer of the code can use it.
"""

import math

LOWEST_RESOLUTION = 4


def growing_levels(resolution: int) -> int:
    """Levels of a model growing from 4x4 to `resolution` (a power of two >= 4)."""
    return int(math.log2(resolution)) - 1


def level_resolution(level: int, resolution: int, levels: int) -> int:
    """Side of level `level` of a `levels`-level model whose top level is `resolution` wide."""
    return resolution >> (levels - 1 - level)
