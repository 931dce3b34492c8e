"""Command-line pieces shared by `python -m alae_tf.edit` and `python -m alae_tf.project`."""

import argparse
import math

import numpy as np

from serving.command_line import number

FLOAT32_MAX = float(np.finfo(np.float32).max)
IMAGES_HELP = ("image files or folders (another size or colour mode is centre-cropped, resized and converted as "
               "training images are, with a note), or the run's held-out images: held-out:N (the first N), "
               "held-out:A-B (positions A to B-1), either followed by :CLASS to count only that class's "
               "images (held-out:0-6:3 = the first six 3s)")
SUBJECTS_HELP = IMAGES_HELP + "; or a projection.npz of python -m alae_tf.project (its images with their projected codes)"


def strength(text: str) -> float:
    """A finite number within float32's range, where the edits compute (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"strength {text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"strength {text!r} is not a finite number")
    if abs(value) > FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"strength {text!r} is beyond float32's range (+-{FLOAT32_MAX:.4g})")
    return value


def noise_seed(text: str) -> int | None:
    """A seed >= 0, or "none": no noise images, as the export's decode and the studio render (argparse type)."""
    if text.lower() == "none":
        return None
    try:
        return number(int, 0)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed (an integer >= 0) or none") from None


positive_int = number(int, 1)


def class_pair(text: str) -> tuple[str, str]:
    """A:B (argparse type)."""
    a, colon, b = text.partition(":")
    if not colon or not a or not b:
        raise argparse.ArgumentTypeError(f"class pair {text!r} is not A:B (e.g. 3:8)")
    return a, b
