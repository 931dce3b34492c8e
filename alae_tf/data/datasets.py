"""`open_image_source`: a dataset name (`alae_tf.config.DATASETS`) and a path -> an `ImageSource`.

- "mnist" / "fashion_mnist": the MNIST-format splits from `alae_tf.data.mnist`, labels kept, their
  own test split. At 28 (or 14, 7) the images are used as they are; at a power of two up to 32 they
  are zero-padded 28 -> 32 first (2 black pixels each side, as the official ALAE's 32x32 MNIST).
- "folder": a directory tree of image files decoded at training time (`alae_tf.data.files`); which
  of them decode is checked once and remembered (`alae_tf.data.folder_check`).
- "prepared": the output of `python -m alae_tf.data.prepare`, or TFRecords in the StyleGAN / official
  ALAE multi-resolution layout (`*-rNN.tfrecords[.PPP]`, NN = log2 of the side, features `shape`
  int64 [C, H, W] and `data` raw uint8 CHW).
Folder and prepared data hold out `test_count` evenly spaced images (`held_out_positions`) and
need a power-of-two resolution.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from alae_tf.config import DATASETS
from alae_tf.data.files import (
    META_FILE,
    PREPARE_COMMAND,
    default_test_count,
    describe_skipped,
    held_out_positions,
    image_channels,
    is_prepared_dataset,
    list_image_files,
    unreadable_reason,
)
from alae_tf.data.folder_check import check_files
from alae_tf.data.mnist import IMAGE_SIDE as MNIST_SIDE
from alae_tf.data.mnist import load_mnist
from alae_tf.data.pyramid import box_downsample, check_resolution, resolution_levels
from alae_tf.data.source import ImageSource
from alae_tf.data.stores import FolderStore, RecordStore
from alae_tf.errors import ConfigError, DataError

MNIST_FAMILY = ("mnist", "fashion_mnist")
MNIST_PADDED_SIDE = 32
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"

logger = logging.getLogger(__name__)


def open_image_source(dataset: str, path: str | None, resolution: int, *, channels: int | None = None,
                      mnist_source: str = "auto", test_count: int | None = None) -> ImageSource:
    """Open `dataset` (one of `alae_tf.config.DATASETS`) for training at `resolution`.

    path: MNIST data path (see `load_mnist`), Fashion-MNIST IDX directory (default
    /usr/share/datasets/fashion-mnist), image folder, or prepared/TFRecord directory.
    channels: the model's (1 or 3); image files are converted to it, grayscale prepared data is
    read as RGB for a 3-channel model (exactly what an RGB read of its images gives), other data
    with other channels is refused. None: the data's own.
    test_count: images held out from folder/prepared data (default: prepare's choice, else
    min(1000, 10%)); MNIST-family data uses its own test split. Raises DataError/ConfigError.
    """
    if dataset in MNIST_FAMILY:
        if test_count is not None:
            raise ConfigError(f"{dataset} has its own test split; test_count applies to folder/prepared data only")
        return _checked_channels(_open_mnist_family(dataset, path, resolution, mnist_source), channels)
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if path is None:
        raise DataError(f"dataset {dataset!r} needs a directory; pass --data-path DIR")
    try:
        check_resolution(resolution)
    except ConfigError as exc:
        raise ConfigError(f"dataset {dataset!r} is read at power-of-two sides, and this model's images are "
                          f"{resolution}x{resolution} ({exc}): use a model.image_shape of such a side, "
                          "e.g. a StyleALAE preset (mnist_style32, fashion_style32)") from None
    directory = Path(path).expanduser()
    if not directory.is_dir():
        what = "a file, not a directory of images" if directory.exists() else "no such directory"
        raise DataError(f"{directory}: {what}; check --data-path")
    if dataset == "folder":
        return _open_folder(directory, resolution, test_count, channels)
    return _checked_channels(_open_records(directory, resolution, test_count, channels), channels)


def given_data_path(given: str) -> str:
    """A --data-path argument as the absolute path config.yaml records (eval.json and an export's
    metadata then name the run's data alike however it was given), checked to exist."""
    path = os.path.abspath(os.path.expanduser(given))
    if not os.path.exists(path):
        raise DataError(f"--data-path {given}: no such file or directory")
    return path


def open_run_images(config, *, path: str | None = None, mnist_source: str | None = None) -> ImageSource:
    """The run's dataset (`config.data`) at the model's resolution and channels, as the run was
    trained on it; `path` (a --data-path) and `mnist_source` override where it is read from."""
    side, _, channels = config.model.image_shape
    d = config.data
    path = None if path is None else given_data_path(path)
    if path is None and d.path is not None and not Path(d.path).expanduser().exists():
        raise DataError(f"{d.path}: the run's data (data.path in its config.yaml) is no longer there; "
                        "pass --data-path DIR, where it is now")
    return open_image_source(d.dataset, path or d.path, side, channels=channels, mnist_source=mnist_source or d.source,
                             test_count=d.test_count)


def _checked_channels(source: ImageSource, channels: int | None) -> ImageSource:
    if channels is not None and source.channels != channels:
        raise DataError(f"{source.description}: the images have {source.channels} channel(s) but the model takes "
                        f"{channels} (model.image_shape): train with a --config file whose model.image_shape ends in "
                        f"{source.channels} (a copy of the preset's file in alae_tf/presets/)"
                        + ("" if source.channels == 1 else
                           ", or prepare it again with python -m alae_tf.data.prepare --grayscale"))
    return source


# --- MNIST family -------------------------------------------------------------------------------


def _open_mnist_family(dataset: str, path: str | None, resolution: int, mnist_source: str) -> ImageSource:
    side = _mnist_side(dataset, resolution)
    if dataset == "mnist":
        splits, name = load_mnist(mnist_source, path), "MNIST"
    else:
        splits, name = _load_fashion_mnist(path), "Fashion-MNIST"
    framing = f"{side}x{side}" if side == MNIST_SIDE else f"padded to {side}x{side}"
    at = "" if resolution == side else f", box-downsampled to {resolution}x{resolution}"
    return ImageSource.from_arrays(
        _framed(splits.train_images, side, resolution), _framed(splits.test_images, side, resolution),
        train_labels=splits.train_labels, test_labels=splits.test_labels,
        description=f"{name} ({splits.source}) {framing}{at}",
    )


def _mnist_side(dataset: str, resolution: int) -> int:
    """The side the 28x28 images are framed to before box-downsampling: 28 itself, or 32 (zero-padded)."""
    for side in (MNIST_SIDE, MNIST_PADDED_SIDE):
        if resolution in resolution_levels(side):
            return side
    raise DataError(
        f"{dataset} images are {MNIST_SIDE}x{MNIST_SIDE}: use a resolution of "
        f"{', '.join(map(str, reversed(resolution_levels(MNIST_SIDE))))} to train on them as "
        f"they are, or a power of two of {MNIST_PADDED_SIDE} or less to train on them zero-padded to "
        f"{MNIST_PADDED_SIDE}x{MNIST_PADDED_SIDE}; not {resolution}"
    )


def _framed(images: np.ndarray, side: int, resolution: int) -> np.ndarray:
    """uint8 [N, 28, 28] -> [N, r, r, 1]: a black border up to `side`, then the box filter down to r."""
    border = (side - MNIST_SIDE) // 2
    framed = np.pad(images, ((0, 0), (border, border), (border, border)))[..., np.newaxis]
    return box_downsample(framed, resolution)


def _load_fashion_mnist(path: str | None):
    if path is None and not FASHION_MNIST_DIR.is_dir():
        raise DataError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}; install it with `{FASHION_MNIST_INSTALL}` "
            "or pass --data-path DIR with the Fashion-MNIST IDX files"
        )
    return load_mnist("idx", FASHION_MNIST_DIR if path is None else path)


# --- image folders ------------------------------------------------------------------------------


def _open_folder(root: Path, resolution: int, test_count: int | None, channels: int | None) -> ImageSource:
    if is_prepared_dataset(root):
        raise DataError(f"{root}: a dataset written by python -m alae_tf.data.prepare, not a folder of image files: "
                        "train on it with --dataset prepared (an existing run reads the kind its config.yaml names, "
                        "data.dataset)")
    files = list_image_files(root)
    readable, modes, skipped, upscaled, cropped, transparent = [], [], [], 0, 0, 0
    for path, checked in zip(files, check_files(root, files)):
        if isinstance(checked, str):
            skipped.append((path.relative_to(root).as_posix(), checked))
            continue
        mode, size, has_transparency = checked
        readable.append(path)
        modes.append(mode)
        upscaled += min(size) < resolution
        cropped += size[0] != size[1]
        transparent += has_transparency
    _report(skipped, upscaled, len(files), resolution, root)
    if not readable:
        raise DataError(f"{root}: none of the {len(files)} image files can be read")
    channels = channels or image_channels(modes)
    store = FolderStore(readable, resolution, channels)
    test_count = default_test_count(len(readable)) if test_count is None else test_count
    test_ids = held_out_positions(len(readable), test_count)
    kind = "grayscale" if channels == 1 else "RGB"
    converted = sum(image_channels([mode]) != channels for mode in modes)
    changes = [f"{len(skipped)} unreadable skipped" if skipped else "", f"{converted} converted to {kind}" if converted else "",
               f"{transparent} with alpha composited over black" if transparent else "",
               f"{cropped} centre-cropped to squares" if cropped else ""]
    description = (f"image folder {root}: {len(readable)} images ({', '.join([f'{test_count} held out', *filter(None, changes)])})"
                   f" at {resolution}x{resolution} {kind}")
    listing = "\n".join([str(test_count)] + [path.relative_to(root).as_posix() for path in readable])
    return ImageSource(store, description=description, train_ids=_complement(test_ids, len(readable)),
                       test_ids=test_ids, skipped=tuple(skipped),
                       contents=f"{len(readable)} images, {hashlib.sha256(listing.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}")


_REPORTED = set()  # folders whose problems this process reported: a command may open its data twice


def _report(skipped: list, upscaled: int, total: int, resolution: int, root: Path) -> None:
    key = (str(root.resolve()), resolution, len(skipped), upscaled)
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    if skipped:
        logger.warning("%s: %s", root, describe_skipped(skipped, total))
    if upscaled:
        logger.warning("%s: %d images are smaller than %dx%d and are upscaled", root, upscaled, resolution, resolution)


def _complement(ids: np.ndarray, count: int) -> np.ndarray:
    keep = np.ones(count, dtype=bool)
    keep[ids] = False
    return np.flatnonzero(keep)


# --- prepared / StyleGAN TFRecords --------------------------------------------------------------


def _open_records(directory: Path, resolution: int, test_count: int | None, channels: int | None) -> ImageSource:
    levels = _find_record_levels(directory)
    meta = _read_meta(directory)
    if resolution > max(levels):
        raise DataError(f"{directory}: the data goes up to {max(levels)}x{max(levels)}; "
                        f"it cannot be used at {resolution}x{resolution}")
    store = RecordStore(levels, resolution, as_rgb=channels == 3)
    store.check_levels()
    count = len(store)
    if meta is not None and meta["num_images"] != count:
        raise DataError(f"{directory}: {META_FILE} lists {meta['num_images']} images but the records hold {count}; "
                        f"the dataset is incomplete; re-create it with `{PREPARE_COMMAND}`")
    if test_count is None:
        test_count = meta["test_count"] if meta else default_test_count(count)
    test_ids = held_out_positions(count, test_count)
    mirror = bool(meta and meta["mirror"])
    origin = f"prepared from {meta['source']}" if meta else "StyleGAN/ALAE TFRecords"
    kind = {1: "grayscale", 3: "RGB"}[store.channels]
    if store.stored_channels < store.channels:
        kind += " (stored grayscale)"
    description = (f"{directory} ({origin}, up to {max(levels)}x{max(levels)}): {count} images "
                   f"({test_count} held out{', training set mirrored' if mirror else ''}) "
                   f"at {resolution}x{resolution} {kind}")
    return ImageSource(store, description=description, train_ids=_complement(test_ids, count),
                       test_ids=test_ids, mirror=mirror, contents=_records_contents(levels, meta, count, test_count))


def _records_contents(levels: dict[int, list[Path]], meta: dict | None, count: int, test_count: int) -> str:
    """A fingerprint of TFRecord data, as an image folder's (`ImageSource.contents`): the held-out
    count, meta.json but for when and by what it was written (else the files' names and sizes), and
    the first 64 KiB of the full-resolution records (a dataset prepared again from other images)."""
    if meta is not None:
        described = json.dumps({key: value for key, value in meta.items() if key not in ("created", "tool")}, sort_keys=True)
    else:
        described = "\n".join(f"{path.name} {path.stat().st_size}" for files in levels.values() for path in files)
    with open(levels[max(levels)][0], "rb") as records:
        head = records.read(1 << 16)
    digest = hashlib.sha256(f"{test_count}\n{described}\n".encode() + head).hexdigest()[:16]
    return f"{count} images, {digest}"


def _find_record_levels(directory: Path) -> dict[int, list[Path]]:
    """{side: shard files} from names like `name-r08.tfrecords` or `name-r08.tfrecords.003`."""
    levels: dict[int, list[Path]] = {}
    for path in sorted(directory.glob("*-r[0-9][0-9].tfrecords*")):
        stem, _, _ = path.name.partition(".tfrecords")
        levels.setdefault(1 << int(stem[-2:]), []).append(path)
    if not levels:
        raise DataError(
            f"{directory}: no TFRecord files (*-rNN.tfrecords) here; create a prepared dataset with "
            f"`{PREPARE_COMMAND}`, or read the images directly: --dataset folder when training a new run "
            f"(an existing run reads the kind its config.yaml names, data.dataset)"
        )
    return levels


def _read_meta(directory: Path) -> dict | None:
    path = directory / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        _ = meta["num_images"], meta["test_count"], meta["mirror"], meta["source"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: unreadable or incomplete ({unreadable_reason(error)}); "
                        f"re-create the dataset with `{PREPARE_COMMAND}`") from None
    return meta
