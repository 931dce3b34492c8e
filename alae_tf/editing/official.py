"""Directions in the official ALAE's format: `principal_directions/direction_<k>.npy`, one numpy
float64 vector [latent] per CelebA-HQ attribute k (the raw LinearSVC normal, not unit length,
fitted on W of generated images labelled by the CelebA-HQ attribute classifiers). The official
repository ships them for its FFHQ model (k = 0, 1, 2, 3, 4, 10, 11, 17, 19).

They are read as unit directions named by the attribute, with the original length kept as
"official_norm" (the official demo's slider moves w by value x that unnormalised vector).
"""

import re
from pathlib import Path

import numpy as np

from alae_tf.errors import ALAEError
from serving.editing import Direction, DirectionSet

# The attribute classifiers' order (celebahq-classifier-NN-NAME in the official principal_directions).
CELEBA_HQ_ATTRIBUTES = (
    "male", "smiling", "attractive", "wavy-hair", "young", "5-o-clock-shadow", "arched-eyebrows",
    "bags-under-eyes", "bald", "bangs", "big-lips", "big-nose", "black-hair", "blond-hair", "blurry",
    "brown-hair", "bushy-eyebrows", "chubby", "double-chin", "eyeglasses", "goatee", "gray-hair",
    "heavy-makeup", "high-cheekbones", "mouth-slightly-open", "mustache", "narrow-eyes", "no-beard",
    "oval-face", "pale-skin", "pointy-nose", "receding-hairline", "rosy-cheeks", "sideburns",
    "straight-hair", "wearing-earrings", "wearing-hat", "wearing-lipstick", "wearing-necklace", "wearing-necktie",
)
FILE_NAME = re.compile(r"^direction_(\d+)\.npy$")
# The presets of runs converted from the model the shipped files were fitted for (FFHQ's model_157:
# `convert --config ffhq`, or the official configs/ffhq.yaml, whose NAME is ffhq).
FITTED_FOR_PRESETS = ("official_ffhq", "ffhq")


def other_model_note(preset: str) -> str | None:
    """A note when official direction files are imported into a run not converted from their model."""
    if preset in FITTED_FOR_PRESETS:
        return None
    return (f"note: the official direction files were fitted in the W of the official FFHQ model (model_157); "
            f"this run's preset is {preset}, whose W they describe only if it was trained on from that model")


def official_direction_files(paths) -> list[Path]:
    """direction_<k>.npy files: the given files, and those inside given directories, by k."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [p for p in path.iterdir() if FILE_NAME.match(p.name)]
            if not found:
                raise ALAEError(f"{path}: no direction_<k>.npy files here")
            files += found
        elif path.is_file() and FILE_NAME.match(path.name):
            files.append(path)
        else:
            raise ALAEError(f"{path}: not a direction_<k>.npy file or a directory of them")
    return sorted(set(files), key=lambda p: int(FILE_NAME.match(p.name)[1]))


def read_official_directions(paths, latent_dim: int) -> DirectionSet:
    directions = []
    for path in official_direction_files(paths):
        k = int(FILE_NAME.match(path.name)[1])
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ALAEError(f"{path}: not a numpy array file ({exc})") from None
        if vector.shape != (latent_dim,) or vector.dtype.kind != "f" or not np.isfinite(vector).all():
            raise ALAEError(f"{path}: expected finite floats of shape [{latent_dim}] (this model's latent size), "
                            f"got {vector.dtype} {list(vector.shape)}")
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            raise ALAEError(f"{path}: the vector is zero")
        name = CELEBA_HQ_ATTRIBUTES[k] if k < len(CELEBA_HQ_ATTRIBUTES) else f"attribute_{k}"
        info = {"method": "svm", "negative": f"not {name}", "positive": name,
                "source": f"official ALAE {path.name}", "official_norm": norm}
        directions.append(Direction(name, (vector / norm).astype(np.float32), info))
    return DirectionSet(latent_dim, tuple(directions))
