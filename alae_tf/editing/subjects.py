"""What an editing figure works on: images with their latent codes.

An image spec (alae_tf.editing.images: files, folders, held-out:...) gives its images with the
encoder's codes E(x); a projection file (`python -m alae_tf.project`'s projection.npz, ending in
.npz) gives the images it was made for with their projected codes (w, or w+ per style input).
Projections are fitted without G's noise unless `project --noise` refined noise images of their
own, so a figure holding one renders each image with its own noise images, or none (`noise`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae_tf.editing.images import count_images, images_per_spec
from alae_tf.errors import ALAEError
from alae_tf.grids import ImageNoise, encode_in_calls
from serving import projection_file



@dataclass(frozen=True)
class Subjects:
    images: np.ndarray  # uint8 [N, H, W, C]
    styles: np.ndarray  # float32 [N, num_styles, latent]
    projected: bool  # some come from a projection file
    noise: ImageNoise  # the noise images of projections made with --noise, none for the other images

    def __len__(self) -> int:
        return len(self.images)


def select_subjects(specs: list[str], config, sampler, checkpoint: tuple[str, int], check_count=None) -> Subjects:
    """The images of `specs` in the order given, with their codes (see the module docstring).
    `checkpoint`: (run directory name, training step) of the networks, for the note on a projection
    made with others; `check_count(number of images)` may refuse them before any is decoded."""
    projections = {spec: read_projection(Path(spec), sampler, checkpoint) for spec in specs if is_projection(spec)}
    others = [spec for spec in specs if spec not in projections]
    if check_count is not None:  # a file given twice is in the figure twice
        check_count(sum(len(projections[spec]) for spec in specs if spec in projections)
                    + (count_images(others, config) if others else 0))
    images_of = dict(zip(others, images_per_spec(others, config))) if others else {}
    images, styles, noise = [], [], []
    for spec in specs:
        if spec in projections:
            projection = projections[spec]
            images.append(projection.images)
            styles.append(projection.styles)
            given = np.full(len(projection), bool(projection.noise))
            noise.append(ImageNoise(projection.noise, given))
        else:
            images.append(images_of[spec])
            styles.append(sampler.as_styles(encode_in_calls(sampler, images_of[spec])).numpy())
            noise.append(ImageNoise.none(len(images_of[spec])))
    subjects = Subjects(np.concatenate(images), np.concatenate(styles), bool(projections), ImageNoise.concat(noise))
    if not len(subjects):
        raise ALAEError(f"no images selected by {' '.join(specs)}")
    return subjects


def is_projection(spec: str) -> bool:
    return spec.lower().endswith(".npz")


def read_projection(path: Path, sampler, checkpoint: tuple[str, int]) -> projection_file.ProjectionFile:
    try:
        projection = projection_file.read_fitting(path, sampler.num_styles, sampler.latent_dim, sampler.image_shape,
                                                  sampler.noise_shapes, "this run")
    except projection_file.ProjectionFileError as exc:
        raise ALAEError(str(exc)) from None
    run_name, run_step = checkpoint
    if (projection.run, projection.training_step) != (run_name, run_step):
        print(f"note: {path} was projected with {projection.run}'s {projection.checkpoint} (step "
              f"{projection.training_step}); the networks used here are {run_name}'s of step {run_step}: it may "
              "reconstruct less well here", file=sys.stderr)
    return projection
