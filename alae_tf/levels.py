"""Resolution levels, shared by config validation, the networks, the schedule and the data.

A growing (progressive) model has one level per power-of-two resolution from 4x4 up to its
full resolution: level 0 is 4x4, each level doubles the side. A model that does not grow has
a single level at its full resolution. Imports nothing, so every layer of the code can use it.
"""

import math

LOWEST_RESOLUTION = 4
MIXING_RANGES = ("coarse", "middle", "fine")  # the style inputs of the levels in use, in three groups


def growing_levels(resolution: int) -> int:
    """Levels of a model growing from 4x4 to `resolution` (a power of two >= 4)."""
    return int(math.log2(resolution)) - 1


def level_resolution(level: int, resolution: int, levels: int) -> int:
    """Side of level `level` of a `levels`-level model whose top level is `resolution` wide."""
    return resolution >> (levels - 1 - level)


def mixing_ranges(level, styles_per_level):
    """{name: (start, stop)} style-input ranges of the levels 0..`level` in use (empty ones left out;
    none at all when fewer than two style inputs are in use: nothing to mix).

    Coarse = the 4x4 level (4x4 and 8x8 from 6 levels, i.e. 128x128, on), middle = the next
    one or two levels, fine = the rest, as in StyleGAN's figure (2 style inputs per level,
    1024x1024: [0, 4), [4, 8), [8, 18)). Examples: 32x32 (4 levels): [0, 2), [2, 4), [4, 8);
    8x8: coarse [0, 2), fine [2, 4); with a single level its style inputs are split in two
    (4x4: coarse [0, 1), fine [1, 2))."""
    levels, per = level + 1, styles_per_level
    if levels * per < 2:
        return {}
    if levels == 1:
        return {"coarse": (0, per // 2), "fine": (per // 2, per)}
    coarse = min(2, max(1, levels // 3))
    middle = coarse + min(2, (levels - coarse) // 2)
    spans = {"coarse": (0, per * coarse), "middle": (per * coarse, per * middle), "fine": (per * middle, per * levels)}
    return {name: span for name, span in spans.items() if span[0] < span[1]}
