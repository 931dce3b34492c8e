"""A photo or scan of one handwritten digit as MNIST's images are (numpy and Pillow, no TensorFlow).

MNIST's digits are light strokes on black, scaled to fit a 20x20 box of the 28x28 image keeping
their aspect ratio, then placed so that their centre of mass is the image's centre (LeCun, Cortes
and Burges, the MNIST page). A photo of a digit written on paper is dark on light, unevenly lit and
anywhere in the picture; centre-cropped and shrunk as it is, the MNIST models read it as nothing
they learned. `mnist_digit` makes it one of MNIST's:

1. the photo in grey levels on a copy of at most WORKING_SIDE pixels a side;
2. turned light on dark where its border is light (paper);
3. the paper's light taken away: its level where no stroke is (a grey opening: the darkest level
   around each point, then the lightest, over a window wider than a stroke, on a coarser copy)
   subtracted, so that shadows and a light gradient do not count as ink;
4. the strokes' levels stretched to full white, the paper's grain (below GRAIN of the ink) black;
5. the box around the strokes cut out, scaled to fit the 20/28 box and placed by its centre of mass.

An image already like MNIST's (at most SMALL pixels a side, dark border) skips step 3: its
strokes are as wide as the window would be.
"""

import numpy as np
from PIL import Image, ImageFilter

WORKING_SIDE = 256  # the photo's copy the strokes are found on (40 ms a photo on a 2-core CPU)
BACKGROUND_SIDE, BACKGROUND_WINDOW = 128, 11  # the opening's copy and window (wider than a stroke)
SMALL = 64
GRAIN = 0.15  # of the ink's level: what lies below it is the paper's
BOX = 20 / 28  # MNIST's box for the digit, of the image's side
NO_DIGIT_HINT = "nothing darker or lighter than the paper: one digit, written in a dark pen, filling a good part of the photo"


def mnist_digit(image: Image.Image, side: int = 28) -> Image.Image | None:
    """The digit in `image` as an MNIST image of side x side pixels (mode "L"), or None when
    the image holds no strokes (blank paper, a flat colour)."""
    grey = image.convert("L")
    if (scale := WORKING_SIDE / max(grey.size)) < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.BOX)
    levels = np.asarray(grey, np.float32) / 255
    border = _border(levels)
    if np.median(border) > 0.5:  # dark strokes on light paper
        levels, border = 1 - levels, 1 - border
    if max(levels.shape) <= SMALL and np.median(border) < 0.1:
        strokes = levels
    else:
        strokes = np.clip(levels - _background(levels), 0, None)
    ink = np.percentile(strokes, 99.5)
    if ink < GRAIN:
        return None
    strokes = np.clip((strokes / ink - GRAIN) / (1 - GRAIN), 0, 1)
    rows, columns = np.flatnonzero((strokes > 0.25).any(1)), np.flatnonzero((strokes > 0.25).any(0))
    if not len(rows):
        return None
    return _placed(strokes[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1], side)


def _border(levels: np.ndarray) -> np.ndarray:
    edge = max(1, min(levels.shape) // 50)
    return np.concatenate([levels[:edge].ravel(), levels[-edge:].ravel(), levels[:, :edge].ravel(),
                           levels[:, -edge:].ravel()])


def _background(levels: np.ndarray) -> np.ndarray:
    """The paper's level at each point: the strokes opened away on a coarser copy, brought back to size."""
    height, width = levels.shape
    scale = min(1.0, BACKGROUND_SIDE / max(height, width))
    coarse = Image.fromarray(levels, "F").resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BOX)
    opened = coarse.filter(ImageFilter.MinFilter(BACKGROUND_WINDOW)).filter(ImageFilter.MaxFilter(BACKGROUND_WINDOW))
    return np.asarray(opened.resize((width, height), Image.BILINEAR), np.float32)


def _placed(strokes: np.ndarray, side: int) -> Image.Image:
    """`strokes` scaled to fit MNIST's box, keeping its aspect ratio, its centre of mass at the image's centre."""
    box = max(1, round(side * BOX))
    scale = box / max(strokes.shape)
    height, width = max(1, round(strokes.shape[0] * scale)), max(1, round(strokes.shape[1] * scale))
    resample = Image.LANCZOS if scale < 1 else Image.BILINEAR
    digit = np.clip(np.asarray(Image.fromarray(strokes, "F").resize((width, height), resample)), 0, 1)
    rows, columns = np.mgrid[:height, :width]
    mass = digit.sum()
    centre_row, centre_column = (rows * digit).sum() / mass, (columns * digit).sum() / mass
    top = int(np.clip(round((side - 1) / 2 - centre_row), 0, side - height))
    left = int(np.clip(round((side - 1) / 2 - centre_column), 0, side - width))
    placed = np.zeros((side, side), np.float32)
    placed[top:top + height, left:left + width] = digit
    return Image.fromarray(np.uint8(np.rint(placed * 255)), "L")
