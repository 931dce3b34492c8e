"""Files and folders that are never seen half-written."""

import ctypes
import errno
import os
import shutil
from pathlib import Path

from serving.atomic_write import replacing


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write `text` to a partial file, then rename it over PATH (serving.atomic_write.replacing): a
    crash mid-write leaves the previous file in place, and a reader (a resume, TF-Serving polling
    its config) never sees a half-written one."""
    with replacing(path) as partial:
        partial.write_text(text)


def move_unless_exists(source: Path, target: Path) -> None:
    """Move directory `source` to `target`; FileExistsError if `target` exists (atomically where
    the OS can: Linux renameat2 with RENAME_NOREPLACE)."""
    if _renameat2(source, target, RENAME_NOREPLACE):
        return
    if target.exists():  # no renameat2 here: a check, then the rename
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    source.rename(target)


def swap(source: Path, target: Path) -> None:
    """Move directory `source` to `target`; an existing `target` goes to `source` in exchange."""
    if not target.exists():
        source.rename(target)
    elif not _exchange(source, target):
        parked = source.with_name(source.name + ".parked")
        target.rename(parked)
        source.rename(target)
        parked.rename(source)


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2  # renameat2 flags (linux/fs.h)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux renameat2(RENAME_EXCHANGE); False where that is unavailable."""
    return _renameat2(a, b, RENAME_EXCHANGE)


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """Linux renameat2(source, target, flags); False where the OS or file system lacks it, FileExistsError
    for RENAME_NOREPLACE onto an existing target, OSError for other failures."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(source), at_cwd, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EXDEV):  # file system or kernel without this flag
        return False
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), str(target))
    raise OSError(code, os.strerror(code), str(target))


def remove_killed_staging(parent: Path, prefix: str) -> None:
    """Delete the staging folders PARENT/PREFIX...-PID of processes that were killed (PID is gone)."""
    for folder in Path(parent).glob(f"{prefix}*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
