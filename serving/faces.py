"""Faces in photos, cut out as the face models' training images were: dlib's frontal face detector
and its 68 landmarks, then an oriented square set by the eyes and the mouth, as in the FFHQ and
CelebA-HQ datasets (Karras et al.'s scripts; the official ALAE's align_faces.py follows them) or
the official code's CelebA 128x128 crop. A face only centre-cropped is framed unlike any image a
model trained on such squares learned from.

dlib (the dlib-bin wheel) and its landmark model (shipped by the face_recognition_models package)
are the `faces` extra; besides them Pillow and NumPy only, so that the studio (python -m serving.http
--studio --align-faces) and python -m alae_tf.align_faces share this one definition.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from serving.command_line import install_extra

INSTALL = f"{install_extra('faces')}: dlib-bin and face_recognition_models, its landmark model"
LANDMARK_MODEL = "models/shape_predictor_68_face_landmarks.dat"
# (half the square's side from the eye-to-eye and eye-to-mouth distances, how far the square's
# centre lies below the eyes in eye-to-mouth distances)
CROPS = {
    "ffhq": (lambda eyes, mouth: max(2.0 * eyes, 1.8 * mouth), 0.1),  # FFHQ and CelebA-HQ
    "celeba": (lambda eyes, mouth: (1.641 * eyes + 1.56 * mouth) / 2, 0.317),  # the official CelebA 128x128
}
DETECTION_SIDE = 1024  # faces are found on a copy at most this large (dlib's detector is slow on big photos)
NO_FACE_HINT = ("dlib finds frontal faces, upright to within ~40 degrees, of at least ~40 pixels (1/25 of the "
                "longer side of a larger photo), with some of the head around them")
SUPERSAMPLING = 4  # the square is resampled at 4x the output side, then reduced (as the dataset scripts)
MAX_SIDE = 2048  # the largest model side (alae_tf.config.MAX_IMAGE_SIDE); 4x that is resampled first
# A square image whose face's square lies this close to its own edges (a share of its side) is
# already aligned: found again in aligned FFHQ and CelebA crops, the square is 0.4-2.6% off, and
# cutting it out again would move and blur a little (20 levels mean at 256x256).
ALIGNED_WITHIN = 0.04


class FacesUnavailable(RuntimeError):
    """dlib or its landmark model is not installed; the message says how to install them."""


def alignment_square(landmarks, crop: str = "ffhq") -> np.ndarray:
    """The square to cut out, as its corners (x, y) in the image's pixels: top left, bottom left,
    bottom right, top right of the upright face (Pillow's QUAD order), from dlib's 68 landmarks."""
    points = np.asarray(landmarks, np.float64)
    eye_left, eye_right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    eyes = (eye_left + eye_right) / 2
    eye_to_eye, eye_to_mouth = eye_right - eye_left, (points[48] + points[54]) / 2 - eyes
    half_side, centre_below_eyes = CROPS[crop]
    # The square's x axis: the eye line, evened out with the normal of the eyes-to-mouth line.
    across = eye_to_eye - _quarter_turn(eye_to_mouth)
    across *= half_side(np.hypot(*eye_to_eye), np.hypot(*eye_to_mouth)) / np.hypot(*across)
    down = _quarter_turn(across)
    centre = eyes + centre_below_eyes * eye_to_mouth
    return np.stack([centre - across - down, centre - across + down, centre + across + down, centre + across - down])


def already_aligned(image: Image.Image, square: np.ndarray) -> bool:
    """Whether `image` is square and `square` (its face's) lies on its edges within ALIGNED_WITHIN."""
    if image.width != image.height:
        return False
    edges = np.array([[0, 0], [0, image.height], [image.width, image.height], [image.width, 0]], np.float64)
    return np.abs(np.asarray(square) - edges).max() <= ALIGNED_WITHIN * image.width


def face_image(image: Image.Image, square: np.ndarray, side: int) -> tuple[Image.Image, bool]:
    """(`aligned_face`, or `image` only resized where it is already aligned; whether it was)."""
    if already_aligned(image, square):
        return image.resize((side, side), Image.Resampling.LANCZOS), True
    return aligned_face(image, square, side), False


def _quarter_turn(vector: np.ndarray) -> np.ndarray:
    """`vector` turned by 90 degrees, x towards y (clockwise on screen, where y points down)."""
    return np.array([-vector[1], vector[0]])


def aligned_face(image: Image.Image, square: np.ndarray, side: int) -> Image.Image:
    """The `side` x `side` image of `square` (`alignment_square`) in `image` (RGB or grayscale, kept).
    Where the square reaches past the photo, the photo is mirrored outwards, blurred and faded to
    its median colour there, as the datasets were made, rather than left black."""
    if not 4 <= side <= MAX_SIDE:
        raise ValueError(f"a side of {side}: 4 to {MAX_SIDE} pixels")
    square = np.array(square, np.float64)
    square_side = np.hypot(*(square[3] - square[0]))
    shrink = int(square_side / side / 2)  # the face alone is >= 4x the output: reduce the photo first
    if shrink > 1:
        image = image.reduce(shrink)
        square, square_side = square / shrink, square_side / shrink
    border = max(round(square_side * 0.1), 3)
    left, top = np.floor(square.min(axis=0)).astype(int) - border
    right, bottom = np.ceil(square.max(axis=0)).astype(int) + border
    box = (max(left, 0), max(top, 0), min(right, image.width), min(bottom, image.height))
    if box != (0, 0, image.width, image.height):
        image = image.crop(box)
        square -= box[:2]
        left, top, right, bottom = left - box[0], top - box[1], right - box[0], bottom - box[1]
    beyond = (max(-left, 0), max(-top, 0), max(right - image.width, 0), max(bottom - image.height, 0))
    if max(beyond) > border - 4:
        pad = tuple(max(amount, round(square_side * 0.3)) for amount in beyond)
        image = _padded(image, pad, blur=float(square_side * 0.02))
        square += pad[:2]
    resampled = image.transform((side * SUPERSAMPLING,) * 2, Image.Transform.QUAD, (square + 0.5).flatten(),
                                Image.Resampling.BILINEAR)
    return resampled.resize((side, side), Image.Resampling.LANCZOS)


def _padded(image: Image.Image, pad: tuple[int, int, int, int], blur: float) -> Image.Image:
    """`image` mirrored outwards by `pad` (left, top, right, bottom) pixels; the added margin is
    blurred, more towards its outer edge, and faded there to the image's median colour."""
    left, top, right, bottom = pad
    photo = np.asarray(image)
    mirrored = np.pad(photo, ((top, bottom), (left, right), *[(0, 0)] * (photo.ndim - 2)), mode="reflect")
    pixels = mirrored.astype(np.float32)
    blurred = np.asarray(Image.fromarray(mirrored).filter(ImageFilter.GaussianBlur(blur)), np.float32)
    height, width = pixels.shape[:2]
    rows, columns = np.ogrid[:height, :width]
    # 1 at the outer edge, 0 where the photo begins, negative inside it.
    outside = np.maximum(1 - np.minimum(columns / left, (width - 1 - columns) / right),
                         1 - np.minimum(rows / top, (height - 1 - rows) / bottom)).astype(np.float32)
    outside = outside.reshape(outside.shape + (1,) * (pixels.ndim - 2))
    pixels += (blurred - pixels) * np.clip(3 * outside + 1, 0, 1)
    pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(outside, 0, 1)
    return Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), image.mode)


class FaceFinder:
    """dlib's frontal face detector and 68-point landmark model, loaded once (~1 s)."""

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise FacesUnavailable(f"face alignment needs dlib: {INSTALL}") from None
        package = importlib.util.find_spec("face_recognition_models")  # its __init__ needs setuptools: not imported
        model = Path(package.submodule_search_locations[0]) / LANDMARK_MODEL if package else None
        if model is None or not model.is_file():
            raise FacesUnavailable(f"face alignment needs dlib's 68-point landmark model: {INSTALL}")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model))
        self._lock = threading.Lock()  # the studio's requests run in threads; dlib's detector keeps buffers

    def landmarks(self, image: Image.Image) -> list[np.ndarray]:
        """The 68 landmarks [68, 2] (x, y) of each frontal face found in upright RGB or grayscale
        `image`, the largest face first. Faces are searched on a copy at most DETECTION_SIDE pixels
        on a side, at twice its scale (dlib's detector sees faces from ~40 pixels there)."""
        scale = max(image.size) / DETECTION_SIDE
        small = image.resize((max(1, round(image.width / scale)), max(1, round(image.height / scale))),
                             Image.Resampling.BILINEAR) if scale > 1 else image
        scale = image.width / small.width
        pixels, faces = np.asarray(image), []
        with self._lock:
            found = sorted(self._detector(np.asarray(small), 1), key=lambda box: box.area(), reverse=True)
            for box in found:
                full = self._dlib.rectangle(round(box.left() * scale), round(box.top() * scale),
                                            round(box.right() * scale), round(box.bottom() * scale))
                shape = self._predictor(pixels, full)
                faces.append(np.array([(point.x, point.y) for point in shape.parts()], np.float64))
        return faces


class FaceAligner:
    """A photo to the aligned square of its largest face, with one crop: what the studio does to
    each upload when started with --align-faces CROP, and read_image given it (an aligner of
    serving.image_files)."""

    mode = "RGB"  # faces are found in colour, whatever the model's channels
    thing, hint = "face", NO_FACE_HINT
    takes_drawings = False  # a drawing has no face

    def __init__(self, crop: str = "ffhq"):
        if crop not in CROPS:
            raise ValueError(f"unknown face crop {crop!r}; one of {', '.join(CROPS)}")
        self.crop = crop
        self.finder = FaceFinder()
        self.description = f"Uploaded photos are cut to their largest face, upright ({crop} crop)."

    def aligned(self, image: Image.Image, side: int) -> tuple[Image.Image | None, str]:
        """(the `side` x `side` square of the largest face in upright RGB `image`, or None; what was
        done, in words)."""
        faces = self.finder.landmarks(image)
        if not faces:
            return None, ""
        face, already = face_image(image, alignment_square(faces[0], self.crop), side)
        which = "its face" if len(faces) == 1 else f"the largest of its {len(faces)} faces"
        return face, (f"already aligned ({self.crop} crop), resized to {side}x{side}" if already else
                      f"{which} cut out upright ({self.crop} crop, {side}x{side})")

