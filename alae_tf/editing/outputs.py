"""The files the editing commands write: checked before the slow work, and a failed write is one
user-facing error (`cannot write PATH: REASON`) instead of a traceback."""

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from alae_tf.errors import ALAEError
from alae_tf.png import save_png


def check_output_file(path: Path, suffix: str | None = None, inputs: tuple[str, ...] = ()) -> None:
    """ALAEError unless `path` looks writable as a file (ending in `suffix`, when given), is none of
    the command's `inputs` (image specs: files are compared, other specs ignored) and lies in none
    of its input folders."""
    with writing(path):  # a name too long for the file system fails even is_dir(), with an OSError
        if any(Path(spec).is_file() and Path(spec).resolve() == path.resolve() for spec in inputs):
            raise ALAEError(f"cannot write {path}: it is one of the input images; choose another --out")
        _check_outside_image_folders(path, inputs, "--out")
        if path.is_dir():
            raise ALAEError(f"cannot write {path}: {os.strerror(errno.EISDIR)}")
        if suffix and path.suffix.lower() != suffix:
            raise ALAEError(f"cannot write {path}: the file name must end in {suffix}")
        _check_can_create(path, path.parent)


def check_output_dir(folder: Path, inputs: tuple[str, ...] = ()) -> None:
    """ALAEError unless `folder` is, or can be made, a folder that files can be created in, and lies
    in none of the command's input folders (image specs)."""
    with writing(folder):
        _check_outside_image_folders(folder, inputs, "--out-dir")
        _check_can_create(folder, folder)


def _check_outside_image_folders(target: Path, inputs: tuple[str, ...], option: str) -> None:
    """A figure written into an input folder is read as one of its images by the next command (folders are read recursively)."""
    folder = next((spec for spec in inputs if Path(spec).is_dir() and target.resolve().is_relative_to(Path(spec).resolve())),
                  None)
    if folder is not None:
        raise ALAEError(f"{option} {target} is inside the image folder {folder}: what is written there would be read as "
                        f"an image of the folder next time; pass another {option}")


def _check_can_create(target: Path, folder: Path) -> None:
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ALAEError(f"cannot write {target}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
        raise ALAEError(f"cannot write {target}: {existing} is not writable")
    try:  # what os.access cannot tell, e.g. root under /proc: create a file there, and remove it
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".alae_tf-write-check-"):
            pass
    except OSError as exc:
        raise ALAEError(f"cannot write {target}: {existing}: {exc.strerror}") from None


@contextlib.contextmanager
def writing(path):
    """Around the write of `path`: an OSError becomes ALAEError (the checks above cannot foresee everything)."""
    try:
        yield
    except OSError as exc:
        raise ALAEError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_png(grid_uint8, path: Path) -> None:
    with writing(path):
        save_png(grid_uint8, path)
