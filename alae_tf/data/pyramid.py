"""Resolution levels of an image source and the box filter that makes each level from the full images.

A source of side R serves R and every exact halving of it that is still >= 4: a power of two
R = 2^n serves 4, 8, ..., R (progressive growing); MNIST's native 28 serves 7, 14, 28. A lower
level is the box filter of the full image: each pixel is the mean of its block, rounded half to
even (StyleGAN's dataset_tool rounds the same way). The prepare tool writes its files with the
same filter, so folder, prepared and in-memory data agree pixel for pixel.
"""

from __future__ import annotations

import numpy as np

from alae_tf.errors import ConfigError
from alae_tf.levels import LOWEST_RESOLUTION


def check_resolution(resolution: int, name: str = "resolution") -> int:
    """`resolution` if it is a power of two >= 4, else ConfigError naming it `name` (image files
    are stored at such sides)."""
    if not isinstance(resolution, int) or resolution < LOWEST_RESOLUTION or resolution & (resolution - 1):
        raise ConfigError(
            f"{name} must be a power of two >= {LOWEST_RESOLUTION} (4, 8, 16, ...), got {resolution}"
        )
    return resolution


def resolution_levels(resolution: int) -> list[int]:
    """The sides a source of side `resolution` serves, ascending: it, halved while that stays whole and >= 4."""
    levels = [resolution]
    while levels[-1] % 2 == 0 and levels[-1] // 2 >= LOWEST_RESOLUTION:
        levels.append(levels[-1] // 2)
    return levels[::-1]


def box_downsample(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [..., R, R, C] -> [..., r, r, C]: each pixel the mean of its (R/r)^2 block, rounded half to even.

    r must be R halved some number of times. Equal to repeated 2x2 means of the float image followed
    by one rounding (exact: integer sums).
    """
    pyramid = box_pyramid(images, resolution)
    if resolution not in pyramid:
        raise ValueError(f"{images.shape[-2]}x{images.shape[-2]} images cannot be box-downsampled to "
                         f"{resolution}x{resolution}: the side must be the full side halved")
    return pyramid[resolution]


def box_pyramid(images: np.ndarray, lowest: int = LOWEST_RESOLUTION) -> dict[int, np.ndarray]:
    """{r: box_downsample(images, r)} for r = R, R/2, ... down to `lowest` (or an odd side), from one
    chain of integer 2x2 block sums."""
    full = side = images.shape[-2]
    pyramid, sums = {full: images}, images
    while side > lowest and side % 2 == 0:
        sums = sums[..., 0::2, 0::2, :].astype(np.uint32) + sums[..., 1::2, 0::2, :] \
            + sums[..., 0::2, 1::2, :] + sums[..., 1::2, 1::2, :]
        side //= 2
        pyramid[side] = np.rint(sums / (full // side) ** 2).astype(np.uint8)
    return pyramid
