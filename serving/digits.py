"""A photo or scan of one handwritten digit as MNIST's images are (numpy and Pillow, no TensorFlow).

MNIST's digits are light strokes on black, scaled to fit a 20x20 box of the 28x28 image keeping
their aspect ratio, then placed so that their centre of mass is the image's centre (LeCun, Cortes
and Burges, the MNIST page). A photo of a digit written on paper is dark on light, unevenly lit and
anywhere in the picture; centre-cropped and shrunk as it is, the MNIST models read it as nothing
they learned. `mnist_digit` makes it one of MNIST's:

1. the photo in grey levels on a copy of at most WORKING_SIDE pixels a side;
2. turned light on dark where its border is light (paper);
3. the paper's light taken away: its level where no stroke is (a grey opening: the darkest level
   around each point, then the lightest, over a window three strokes wide, on a coarser copy)
   subtracted, so that shadows and a light gradient do not count as ink. The strokes' width is
   measured (twice their area over their outline, Otsu's threshold telling them from the paper):
   a fixed window hollowed out the thick strokes of close-up photos and of the studio's canvas;
4. the strokes' levels stretched to full white, the paper's grain black: what lies less than
   GRAIN_SIGMAS spreads of the grain (a robust standard deviation) or GRAIN of the ink above the
   paper's level. A picture whose ink lies less than INK_SIGMAS spreads above it holds no digit;
5. the box around the strokes cut out; strokes thinner than MNIST's (a pen's) widened to
   MNIST_STROKE of the box; scaled to fit the 20/28 box and placed by its centre of mass.

An image already like MNIST's (at most SMALL pixels a side, dark border) skips step 3: its
strokes are as wide as the window would be. Two framings of paper on a desk: where the border
shows both (a strip of desk along an edge), the picture is first cut to the rows and columns
mostly of the level of its middle (the paper); where what steps 2-4 found is a sheet of paper (a
note lying whole on a darker desk: the border said the desk was the paper), they are done again
on the sheet alone.
"""

import numpy as np
from PIL import Image, ImageFilter

WORKING_SIDE = 256  # the photo's copy the strokes are found on (10-25 ms a photo on a 2-core CPU)
BACKGROUND_SIDE, BACKGROUND_WINDOW = 128, 11  # the opening's copy (at most) and window
STROKES_PER_WINDOW = 3
MNIST_STROKE = 0.09  # MNIST's strokes are ~9% of its digits' box (1.9 of 20 pixels, the median of 500)
SMALL = 64
GRAIN = 0.15  # of the ink's level above the paper's
# The paper's grain, in spreads (its levels' robust standard deviation) above the paper's level:
# the ink must lie INK_SIGMAS above it to count as a digit (blank paper's grain reached ~3), and what
# lies less than GRAIN_SIGMAS above it is paper (black), as is what lies below GRAIN of the ink.
INK_SIGMAS, GRAIN_SIGMAS = 6, 3
MIN_INK = 0.04  # of full white: a flat picture (no grain) with less holds no digit
BOX = 20 / 28  # MNIST's box for the digit, of the image's side
# A sheet of paper on a darker desk is found as one light "stroke" (the border said the desk is
# the paper): solid along SHEET_EDGE of its edge, SHEET_FILL of it light, its sides at least
# SHEET_ASPECT apart. The digit is then looked for on the sheet alone.
SHEET_EDGE, SHEET_FILL, SHEET_ASPECT = 0.8, 0.6, 0.3
# A border of two levels (Otsu's split), each at least MIXED_BORDER of it and MIXED_GAP apart
# (of full white), shows paper and desk.
MIXED_BORDER, MIXED_GAP = 0.1, 0.25
SMALLEST_PAPER = 16  # pixels a side of the working copy: less is no paper to cut the photo to
NO_DIGIT_HINT = "nothing darker or lighter than the paper: one digit, written in a dark pen, filling a good part of the photo"


def mnist_digit(image: Image.Image, side: int = 28) -> Image.Image | None:
    """The digit in `image` as an MNIST image of side x side pixels (mode "L"), or None when
    the image holds no strokes (blank paper, a flat colour)."""
    grey = image.convert("L")
    if (scale := WORKING_SIDE / max(grey.size)) < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.BOX)
    grey = _paper_of(grey)
    strokes = _strokes_box(grey)
    if strokes is not None and _a_sheet(strokes[0]):
        (top, left), (height, width) = strokes[1], strokes[0].shape
        inset_rows, inset_columns = max(1, height // 25), max(1, width // 25)
        strokes = _strokes_box(grey.crop((left + inset_columns, top + inset_rows,
                                          left + width - inset_columns, top + height - inset_rows)))
    return None if strokes is None else _placed(_thickened(strokes[0]), side)


def _strokes_box(grey: Image.Image) -> tuple[np.ndarray, tuple[int, int]] | None:
    """(the strokes of `grey` (steps 2-4) in [0, 1], cut to their box; the box's top and left), or
    None where it holds none."""
    levels = np.asarray(grey, np.float32) / 255
    border = _border(levels)
    if np.median(border) > 0.5:  # dark strokes on light paper
        levels, border = 1 - levels, 1 - border
    flat = levels if max(levels.shape) <= SMALL and np.median(border) < 0.1 else levels - _background(levels)
    # The paper's level, its grain's spread (robust: the median absolute deviation) and the ink's level.
    paper = np.median(flat)
    grain = 1.4826 * np.median(np.abs(flat - paper))
    ink = np.percentile(flat, 99.5)
    if ink - paper < max(MIN_INK, INK_SIGMAS * grain):
        return None
    floor = paper + max(GRAIN * (ink - paper), GRAIN_SIGMAS * grain)
    strokes = np.clip((flat - floor) / (ink - floor), 0, 1)
    rows, columns = np.flatnonzero((strokes > 0.25).any(1)), np.flatnonzero((strokes > 0.25).any(0))
    if not len(rows):
        return None
    return strokes[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1], (int(rows[0]), int(columns[0]))


def _paper_of(grey: Image.Image) -> Image.Image:
    """`grey` cut to the paper where its border shows both the paper and what it lies on (a strip
    of desk along an edge): the rows and columns mostly of the paper's level, the level of the
    picture's middle."""
    levels = np.asarray(grey, np.float32) / 255
    border = _border(levels)
    split = _otsu_threshold(border)
    light = border > split
    if min(light.mean(), 1 - light.mean()) < MIXED_BORDER or abs(border[light].mean() - border[~light].mean()) < MIXED_GAP:
        return grey
    height, width = levels.shape
    middle = levels[height // 4:height - height // 4, width // 4:width - width // 4]
    paper = levels > split if np.median(middle) > split else levels <= split
    rows, columns = np.flatnonzero(paper.mean(1) > 0.5), np.flatnonzero(paper.mean(0) > 0.5)
    if len(rows) < SMALLEST_PAPER or len(columns) < SMALLEST_PAPER:
        return grey
    inset_rows, inset_columns = max(1, len(rows) // 50), max(1, len(columns) // 50)
    return grey.crop((columns[0] + inset_columns, rows[0] + inset_rows, columns[-1] + 1 - inset_columns, rows[-1] + 1 - inset_rows))


def _a_sheet(strokes: np.ndarray) -> bool:
    """Whether the "strokes" found are a sheet of paper lighter than what it lies on (the photo's
    border): solid all along its edge, mostly filled, not a sliver (a digit's box meets its strokes
    only here and there along its edge: at most 0.85 of it in 300 canvas-like drawings)."""
    height, width = strokes.shape
    if min(height, width) < 8 or min(height, width) < SHEET_ASPECT * max(height, width):
        return False
    a, b = max(1, height // 30), max(1, width // 30)
    edge = np.concatenate([strokes[a, b:-b], strokes[-1 - a, b:-b], strokes[a:-a, b], strokes[a:-a, -1 - b]])
    return (edge > 0.5).mean() > SHEET_EDGE and (strokes > 0.5).mean() > SHEET_FILL


class DigitAligner:
    """A photo or drawing to its digit framed as MNIST's: what the studio does to each upload when
    started with --align-digits, and read_image given it (an aligner of serving.image_files)."""

    mode = "L"
    thing, hint = "digit", NO_DIGIT_HINT
    takes_drawings = True  # a drawing is framed as a photo is
    description = ("Uploaded photos and drawings are framed as MNIST's digits (light strokes on black, "
                   "in a box of 20/28 of the side, centred by their mass).")

    def aligned(self, image: Image.Image, side: int) -> tuple[Image.Image | None, str]:
        """(`image`'s digit as MNIST's, side x side, or None where it holds none; what was done, in words)."""
        digit = mnist_digit(image, side)
        return digit, f"its digit framed as MNIST's ({side}x{side})"


def _thickened(strokes: np.ndarray) -> np.ndarray:
    """Strokes thinner than MNIST's (a pen's) widened to MNIST_STROKE of the box's longer side."""
    grow = MNIST_STROKE * max(strokes.shape) - _stroke_width(strokes)
    window = 2 * int(round(grow / 2)) + 1  # widens a stroke by window - 1 pixels
    if window < 3:
        return strokes
    padded = np.pad(strokes, window // 2)
    return np.asarray(Image.fromarray(padded, "F").filter(ImageFilter.MaxFilter(window)), np.float32)


def _border(levels: np.ndarray) -> np.ndarray:
    edge = max(1, min(levels.shape) // 50)
    return np.concatenate([levels[:edge].ravel(), levels[-edge:].ravel(), levels[:, :edge].ravel(),
                           levels[:, -edge:].ravel()])


def _background(levels: np.ndarray) -> np.ndarray:
    """The paper's level at each point: the strokes opened away on a coarser copy, brought back to
    size. The copy is at most BACKGROUND_SIDE a side, and smaller where the strokes are wider than
    BACKGROUND_WINDOW / STROKES_PER_WINDOW on it (the same as a wider window, and faster)."""
    height, width = levels.shape
    side = min(BACKGROUND_SIDE, max(height, width))
    coarse = _resized(levels, side)
    stroke = _stroke_width(np.asarray(coarse))
    if stroke * STROKES_PER_WINDOW > BACKGROUND_WINDOW:
        coarse = _resized(levels, side * BACKGROUND_WINDOW / (stroke * STROKES_PER_WINDOW))
    opened = coarse.filter(ImageFilter.MinFilter(BACKGROUND_WINDOW)).filter(ImageFilter.MaxFilter(BACKGROUND_WINDOW))
    return np.asarray(opened.resize((width, height), Image.BILINEAR), np.float32)


def _resized(levels: np.ndarray, side: float) -> Image.Image:
    """`levels` as a mode "F" image whose longer side is `side` pixels (box-averaged)."""
    height, width = levels.shape
    scale = side / max(height, width)
    return Image.fromarray(levels, "F").resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BOX)


def _stroke_width(levels: np.ndarray) -> float:
    """The strokes' width in pixels: twice their area over their outline's length (a stroke of length
    L and width W: 2LW / 2(L + W), about W), the strokes being what lies above Otsu's threshold."""
    strokes = levels > _otsu_threshold(levels)
    outline = np.count_nonzero(strokes[1:] != strokes[:-1]) + np.count_nonzero(strokes[:, 1:] != strokes[:, :-1])
    return 2 * np.count_nonzero(strokes) / max(outline, 1)


def _otsu_threshold(levels: np.ndarray) -> float:
    """The level that best splits `levels` (in [0, 1]) in two classes: the largest variance between them."""
    counts, edges = np.histogram(levels, 64, (0, 1))
    share, centres = counts / levels.size, (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(share)
    mean_below = np.cumsum(share * centres)
    between = (mean_below[-1] * below - mean_below) ** 2 / np.maximum(below * (1 - below), 1e-12)
    return float(centres[np.argmax(between)])


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
