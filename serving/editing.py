"""Latent editing on numpy (no TensorFlow): the directions file, and the style arithmetic an app
needs to edit real images with an export's `encode` and `decode_styles`.

A directions file is JSON (`FORMAT`, `VERSION`) holding unit vectors in W, one per attribute or
class pair, and how each was found:

    {"format": "alae_tf.directions", "version": 1, "latent_dim": 50,
     "directions": [{"name": "3_to_8", "vector": [50 floats], "method": "svm",
                     "negative": "3", "positive": "8", "held_out_accuracy": 0.99, ...}, ...]}

The vector points from the negative class to the positive one; moving w by `strength` along it
moves w that far in Euclidean distance. A run keeps its directions in RUN/directions.json
(`python -m alae_tf.edit directions`); an export carries the same document in its metadata
under "directions", so an app can edit without TensorFlow.

Styles are [B, num_styles, latent], one w per style input of G; a layer range (start, stop)
names the style inputs [start, stop) (an export lists its named ranges in its metadata,
"layer_ranges": "all", and "coarse", "middle", "fine" where G has enough style inputs).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.atomic_write import replacing
from serving.contract import is_real_number

FORMAT = "alae_tf.directions"
VERSION = 1
UNIT_TOLERANCE = 1e-4  # |norm - 1| allowed for a stored vector


class DirectionsError(ValueError):
    """A directions file or document that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Direction:
    name: str
    vector: np.ndarray  # float32 [latent], unit norm
    info: dict = field(default_factory=dict)  # how it was found (method, classes, held-out accuracy, ...)


@dataclass(frozen=True)
class DirectionSet:
    latent_dim: int
    directions: tuple[Direction, ...] = ()

    @property
    def names(self) -> list[str]:
        return [direction.name for direction in self.directions]

    def vector(self, name: str) -> np.ndarray:
        for direction in self.directions:
            if direction.name == name:
                return direction.vector
        known = ", ".join(self.names) or "none"
        raise DirectionsError(f"unknown direction {name!r}; known directions: {known}")

    def merged(self, newer: "DirectionSet") -> "DirectionSet":
        """These directions with `newer`'s added; a name in both takes `newer`'s vector."""
        if newer.latent_dim != self.latent_dim:
            raise DirectionsError(f"cannot merge directions of latent size {newer.latent_dim} into {self.latent_dim}")
        replaced = set(newer.names)
        kept = tuple(d for d in self.directions if d.name not in replaced)
        return DirectionSet(self.latent_dim, kept + newer.directions)

    def to_json(self) -> dict:
        # float32 -> Python float is exact, and JSON keeps every float64 digit: reading gives the same bits.
        entries = [{"name": d.name, "vector": [float(x) for x in d.vector], **d.info} for d in self.directions]
        return {"format": FORMAT, "version": VERSION, "latent_dim": self.latent_dim, "directions": entries}

    @classmethod
    def from_json(cls, document, where: str = "directions") -> "DirectionSet":
        """A validated set from the JSON document; raises DirectionsError naming `where` and the problem."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise DirectionsError(f"{where}: not an alae_tf directions document (no \"format\": \"{FORMAT}\")")
        if document.get("version") != VERSION:
            raise DirectionsError(f"{where}: directions format version {document.get('version')!r}; this alae_tf reads {VERSION}")
        latent_dim, entries = document.get("latent_dim"), document.get("directions")
        if not isinstance(latent_dim, int) or latent_dim < 1 or not isinstance(entries, list):
            raise DirectionsError(f"{where}: needs an integer latent_dim and a list of directions")
        directions, seen = [], set()
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name or name in seen:
                raise DirectionsError(f"{where}: direction {index} has a missing or repeated name ({name!r})")
            seen.add(name)
            vector = check_unit_vector(entry.get("vector"), latent_dim, f"{where}: direction {name!r}")
            info = {key: value for key, value in entry.items() if key not in ("name", "vector")}
            directions.append(Direction(name, vector, info))
        return cls(latent_dim, tuple(directions))

    @classmethod
    def read(cls, path) -> "DirectionSet":
        path = Path(path)
        try:
            document = json.loads(path.read_text())
        except OSError as exc:
            raise DirectionsError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise DirectionsError(f"{path}: not JSON ({exc})") from None
        return cls.from_json(document, str(path))

    def write(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as partial:  # readers never see a half-written file
            partial.write_text(json.dumps(self.to_json(), indent=1) + "\n")


# The official interactive_demo.py's sliders move w by -40..40 x the raw direction_<k>.npy vector.
OFFICIAL_SLIDER_END = 40.0


def edit_reach(direction: Direction) -> float | None:
    """How far along a direction edits go by default: where the studio's slider ends and where
    edit apply's default sweep stops. A fitted direction: twice its class_distance (the distance
    between its two sides' mean codes); an official one: where the official demo's slider ends
    (40 x the length of its raw vector, kept as official_norm). None when its info says neither."""
    distance, norm = direction.info.get("class_distance"), direction.info.get("official_norm")
    if _is_positive(distance):
        return 2.0 * float(distance)
    if _is_positive(norm):
        return OFFICIAL_SLIDER_END * float(norm)
    return None


def _is_positive(value) -> bool:
    return is_real_number(value) and value > 0


def check_unit_vector(value, latent_dim: int, what: str) -> np.ndarray:
    try:
        vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DirectionsError(f"{what}: the vector is not a list of numbers") from None
    if vector.shape != (latent_dim,):
        raise DirectionsError(f"{what}: vector of shape {list(vector.shape)}, expected [{latent_dim}]")
    if not np.isfinite(vector).all():
        raise DirectionsError(f"{what}: the vector holds NaN or infinite values")
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise DirectionsError(f"{what}: the vector has norm {norm:.6g}, expected a unit vector")
    return vector


# --- styles -------------------------------------------------------------------------------------


def as_styles(w_or_styles, num_styles: int) -> np.ndarray:
    """w [B, latent] (repeated on every style input) or styles [B, num_styles, latent] -> float32 styles."""
    array = np.asarray(w_or_styles, dtype=np.float32)
    if array.ndim == 2:
        return np.repeat(array[:, np.newaxis, :], num_styles, axis=1)
    if array.ndim != 3 or array.shape[1] != num_styles:
        raise ValueError(f"expected w [batch, latent] or styles [batch, {num_styles}, latent], got shape {list(array.shape)}")
    return array


def real_numbers(value, what: str) -> np.ndarray:
    """`value` (a number or an array of them) as float64; ValueError for strings, booleans, complex
    numbers and other objects, which numpy would otherwise convert or refuse with a TypeError."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be a real number or one per row, got {value!r}")
    return array.astype(np.float64)


def check_layer_range(start: int, stop: int, num_styles: int) -> None:
    if not 0 <= start <= stop <= num_styles:
        raise ValueError(f"layer range ({start}, {stop}) is not within [0, {num_styles}]")


def edit_styles(w_or_styles, direction, strength, start: int, stop: int, num_styles: int) -> np.ndarray:
    """styles + strength * direction on the style inputs [start, stop); strength: a number or one per row."""
    check_layer_range(start, stop, num_styles)
    styles = as_styles(w_or_styles, num_styles)
    direction = np.asarray(direction, dtype=np.float32)
    if direction.shape != styles.shape[2:]:
        raise ValueError(f"direction of shape {list(direction.shape)} does not fit latent size {styles.shape[2]}")
    if not np.isfinite(direction).all():
        raise ValueError("direction contains NaN or infinite values")
    strength = real_numbers(strength, "strength")
    if strength.ndim > 1 or (strength.ndim == 1 and len(strength) != len(styles)):
        raise ValueError(f"strength must be a number or one per row ({len(styles)}), got shape {list(strength.shape)}")
    if not (np.abs(strength) <= np.finfo(np.float32).max).all():  # also false for NaN
        raise ValueError(f"strength must be finite in float32, got {strength.tolist()}")
    strength = strength.astype(np.float32)
    inside = (np.arange(num_styles) >= start) & (np.arange(num_styles) < stop)
    step = strength.reshape(-1, 1, 1) * direction[np.newaxis, np.newaxis, :]
    return styles + np.where(inside[np.newaxis, :, np.newaxis], step, np.float32(0.0))


def mix_styles(destination, source, start: int, stop: int, num_styles: int) -> np.ndarray:
    """`destination`'s styles with the style inputs [start, stop) taken from `source` (w or styles each)."""
    check_layer_range(start, stop, num_styles)
    destination, source = as_styles(destination, num_styles), as_styles(source, num_styles)
    if destination.shape != source.shape:
        raise ValueError(f"destination and source differ in shape: {list(destination.shape)} and {list(source.shape)}")
    inside = (np.arange(num_styles) >= start) & (np.arange(num_styles) < stop)
    return np.where(inside[np.newaxis, :, np.newaxis], source, destination)


def interpolation_points(a, b, steps: int) -> np.ndarray:
    """[steps, *a.shape]: `steps` points from a to b, (1 - t) a + t b for t evenly in [0, 1], so
    exactly a and b at the ends (as alae_tf's Sampler.interpolate; a + t (b - a) misses b by float
    rounding)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(steps, *([1] * a.ndim))
    return (np.float32(1.0) - t) * a + t * b
