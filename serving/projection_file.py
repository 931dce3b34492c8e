"""The projection file, `python -m alae_tf.project`'s projection.npz: per image the latent codes
that reconstruct it, in the form an export's `decode_styles` takes. numpy only, so that the
studio reads it without TensorFlow. An .npz archive (np.savez, no pickles) holding:

    styles            float32 [N, num_styles, latent]  one w per style input of G (all equal
                                                       unless per_layer)
    images            uint8 [N, H, W, C]               the images projected, at the model's size
    lpips, mse        float32 [N]                      the projection's distances to the images
    encoder_lpips, encoder_mse  float32 [N]            the encoder's reconstruction G(E(x))'s
    per_layer         bool                             styles refined per style input (w+)
    run, checkpoint   str                              the run's and checkpoint's names, as an
                                                       export's metadata names them
    training_step     int
    noise_00, ...     float32 [N, h, w, 1]             G's noise images, when refined (--noise)

Files written before 2026-12-04 hold only styles and the four distances; `read` says so.
"""

import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.atomic_write import replacing

DISTANCES = ("lpips", "mse", "encoder_lpips", "encoder_mse")
ABOUT = ("per_layer", "run", "checkpoint", "training_step")
NOISE_PREFIX = "noise_"
MAX_UNPACKED_BYTES = 1 << 30  # what the archive's members may add up to once read
HEADERS_AND_ABOUT_BYTES = 1 << 16  # a bound on the .npy headers and the ABOUT members (~2 KiB)
# `write` stores the members uncompressed (np.savez): a file that unpacks to much more than its own
# size was made otherwise, and reading it would cost that much memory per upload.
MAX_EXPANSION = 4
# Members a file may hold: styles, images, the distances, ABOUT and up to this many noise images
# (G has two per block: 18 at 1024x1024). Every member listed costs time (150,000 empty ones: 8 s).
MAX_NOISE_INPUTS = 64
MAX_MEMBERS = 2 + len(DISTANCES) + len(ABOUT) + MAX_NOISE_INPUTS


class ProjectionFileError(ValueError):
    """A file that is not a usable projection; the message says why."""


@dataclass(frozen=True)
class ProjectionFile:
    styles: np.ndarray  # float32 [N, num_styles, latent]
    images: np.ndarray  # uint8 [N, H, W, C]
    distances: dict  # name in DISTANCES -> float32 [N]
    per_layer: bool
    run: str
    checkpoint: str
    training_step: int
    noise: list  # float32 [N, h, w, 1] per noise input of G; empty when not refined

    def __len__(self) -> int:
        return len(self.styles)

    def noise_of(self, index: int) -> list | None:
        """Image `index`'s refined noise images, [1, h, w, 1] each; None when the file holds none."""
        return [images[index:index + 1] for images in self.noise] or None


def shape_mismatch(projection: ProjectionFile, num_styles: int, latent_dim: int, image_shape, owner: str) -> str | None:
    """Why `projection` does not fit a model of these shapes ("styles are ...: it was projected with
    another model"), or None when it fits; `owner` names the model ("this run")."""
    expected_styles, expected_image = (num_styles, latent_dim), tuple(image_shape)
    if projection.styles.shape[1:] == expected_styles and projection.images.shape[1:] == expected_image:
        return None
    return (f"styles are {list(projection.styles.shape[1:])} and its images {list(projection.images.shape[1:])}; "
            f"{owner}'s are {list(expected_styles)} and {list(expected_image)}: it was projected with another model")


def max_images(num_styles: int, latent_dim: int, image_shape, noise_shapes=()) -> int:
    """The most images a file for a model of these shapes may hold and still be read (members within
    MAX_UNPACKED_BYTES); `noise_shapes`: G's noise images' shapes when they are stored (--noise)."""
    per_image = (4 * num_styles * latent_dim + math.prod(image_shape) + 4 * len(DISTANCES)
                 + 4 * sum(math.prod(shape) for shape in noise_shapes))
    return (MAX_UNPACKED_BYTES - HEADERS_AND_ABOUT_BYTES) // per_image


def write(target, projection: ProjectionFile) -> None:
    """Into `target`, a path (replaced whole: a reader never sees half a file) or a binary file object."""
    if isinstance(target, (str, os.PathLike)):
        with replacing(target) as partial, open(partial, "wb") as file:
            write(file, projection)
        return
    noise = {f"{NOISE_PREFIX}{index:02d}": array for index, array in enumerate(projection.noise)}
    np.savez(target, styles=projection.styles, images=projection.images, **projection.distances,
             per_layer=np.bool_(projection.per_layer), run=np.str_(projection.run),
             checkpoint=np.str_(projection.checkpoint), training_step=np.int64(projection.training_step), **noise)


def read_fitting(path: Path, num_styles: int, latent_dim: int, image_shape, noise_shapes, owner: str) -> ProjectionFile:
    """The projection file at `path`, checked to fit a model of these shapes (`owner` names it:
    "this run"); ProjectionFileError "PATH: why" when it cannot be read or does not fit."""
    try:
        projection = read(path.read_bytes())
    except OSError as exc:
        raise ProjectionFileError(f"{path}: cannot read the projection file ({exc.strerror or exc})") from None
    except ProjectionFileError as exc:
        raise ProjectionFileError(f"{path}: {exc}") from None
    problem = fitting_problem(projection, num_styles, latent_dim, image_shape, noise_shapes, owner)
    if problem:
        raise ProjectionFileError(f"{path}: its {problem}")
    return projection


def fitting_problem(projection: ProjectionFile, num_styles: int, latent_dim: int, image_shape, noise_shapes,
                    owner: str) -> str | None:
    """Why `projection` does not fit a model of these shapes ("styles are ...", "noise images are
    ..."), or None."""
    mismatch = shape_mismatch(projection, num_styles, latent_dim, image_shape, owner)
    if mismatch:
        return mismatch
    stored, expected = [tuple(n.shape[1:]) for n in projection.noise], [tuple(shape) for shape in noise_shapes]
    if stored and stored != expected:
        return f"noise images are {stored}; {owner}'s generator takes {expected}: it was projected with another model"
    return None


def read(data: bytes) -> ProjectionFile:
    """The projection in the bytes of a projection.npz; ProjectionFileError naming the problem."""
    arrays = _arrays(data)
    missing = [name for name in ("styles", *DISTANCES) if name not in arrays]
    if missing:
        raise ProjectionFileError(f"not a projection file of python -m alae_tf.project (no {', '.join(missing)})")
    if "images" not in arrays or any(name not in arrays for name in ABOUT):
        raise ProjectionFileError("this projection.npz was written before 2026-12-04 and holds no images; "
                                  "run python -m alae_tf.project again")
    styles, images = arrays["styles"], arrays["images"]
    if styles.ndim != 3 or styles.dtype != np.float32 or not len(styles):
        raise ProjectionFileError(f"styles must be float32 [N, num_styles, latent], got {styles.dtype} {list(styles.shape)}")
    if not np.isfinite(styles).all():
        raise ProjectionFileError("styles hold NaN or infinite values")
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(styles):
        raise ProjectionFileError(f"images must be uint8 [{len(styles)}, H, W, C], got {images.dtype} {list(images.shape)}")
    distances = {}
    for name in DISTANCES:
        if arrays[name].shape != (len(styles),) or not np.issubdtype(arrays[name].dtype, np.floating):
            raise ProjectionFileError(f"{name} must hold one number per image ({len(styles)}), "
                                      f"got {arrays[name].dtype} {list(arrays[name].shape)}")
        distances[name] = arrays[name].astype(np.float32)
    noise = [arrays[name] for name in sorted(arrays) if name.startswith(NOISE_PREFIX)]
    for name, noise_images in zip(sorted(name for name in arrays if name.startswith(NOISE_PREFIX)), noise):
        if (noise_images.dtype != np.float32 or noise_images.ndim != 4 or len(noise_images) != len(styles)
                or noise_images.shape[3] != 1):
            raise ProjectionFileError(f"{name} must be float32 [{len(styles)}, h, w, 1], "
                                      f"got {noise_images.dtype} {list(noise_images.shape)}")
        if not np.isfinite(noise_images).all():
            raise ProjectionFileError(f"{name} holds NaN or infinite values")
    try:
        per_layer, run, checkpoint = bool(arrays["per_layer"]), str(arrays["run"]), str(arrays["checkpoint"])
        training_step = int(arrays["training_step"])
    except (TypeError, ValueError):
        raise ProjectionFileError("per_layer, run, checkpoint and training_step must be single values") from None
    return ProjectionFile(styles, images, distances, per_layer, run, checkpoint, training_step, noise)


def _arrays(data: bytes) -> dict:
    """The archive's arrays by name, refusing pickles, members that unpack to more than
    MAX_UNPACKED_BYTES or MAX_EXPANSION times the archive, and arrays larger than their member."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if len(archive.infolist()) > MAX_MEMBERS:
                raise ProjectionFileError(f"the archive holds {len(archive.infolist())} members; a projection file "
                                          f"holds at most {MAX_MEMBERS}")
            # zipfile reads a member up to its declared size, so the declared sizes bound the work.
            unpacked = sum(member.file_size for member in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ProjectionFileError(f"the archive unpacks to {unpacked / 2**20:.0f} MiB, above the "
                                          f"{MAX_UNPACKED_BYTES >> 20} MiB a projection file may hold")
            if unpacked > MAX_EXPANSION * len(data) + HEADERS_AND_ABOUT_BYTES:
                raise ProjectionFileError(f"the archive unpacks to {unpacked / 2**20:.1f} MiB from {len(data) / 2**20:.1f} MiB; "
                                          f"python -m alae_tf.project stores its arrays uncompressed (np.savez), and "
                                          f"a file that expands more than {MAX_EXPANSION}x is refused")
            for member in archive.infolist():
                if member.filename.endswith(".npy"):
                    _check_array_size(archive, member)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except ProjectionFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, MemoryError) as exc:
        raise ProjectionFileError(f"not a readable .npz archive ({exc or type(exc).__name__})") from None
    return {name: value for name, value in members.items() if isinstance(value, np.ndarray)}  # not other files


def _check_array_size(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse a .npy member whose header declares more data than the member holds: numpy would
    allocate the declared array before finding the data missing."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ProjectionFileError(f"{member.filename}: .npy format version {version[0]}.{version[1]} is not read here")
        shape, _, dtype = readers[version](stream)
        declared = math.prod(shape) * dtype.itemsize
        if declared > member.file_size - stream.tell():
            raise ProjectionFileError(f"{member.filename} declares a {dtype} array of shape {list(shape)} "
                                      f"({declared} bytes), more than the member's {member.file_size} bytes hold")
