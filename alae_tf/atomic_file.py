"""Files and folders that are never seen half-written."""

import ctypes
import errno
import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import IO

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


# A staging folder's lock: held by the process that builds in the folder until it ends. A PID
# says nothing about a process of another container (PID namespace) or machine sharing the
# folder's file system: judged by its PID, a live export of another container was deleted.
STAGING_LOCK = ".staging.lock"
UNLOCKED_GRACE_SECONDS = 60  # a folder without a lock file: one just made, or made before the lock


def make_staging_folder(path: Path) -> IO:
    """Create folder `path` (and its parents) holding a lock that tells `remove_abandoned_staging`
    it is in use; returns the lock's open file: the lock lasts until it is closed or the process
    ends, however it ends. FileExistsError if `path` exists."""
    path.mkdir(parents=True)
    unnamed = path / f"{STAGING_LOCK}.new"  # locked before it takes the name another process looks for
    lock = open(unnamed, "w")  # POSIX locks (NFS's flock) need a file open for writing
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(unnamed, path / STAGING_LOCK)
    return lock


def remove_abandoned_staging(parent: Path, prefix: str) -> None:
    """Delete the folders PARENT/PREFIX* whose lock nobody holds (their process was killed or
    crashed): every process that can reach them, in any container or machine, is asked through
    the lock. A folder without a lock file goes once it is a minute old."""
    for folder in Path(parent).glob(f"{prefix}*"):
        if folder.is_dir() and not _held(folder / STAGING_LOCK):
            shutil.rmtree(folder, ignore_errors=True)


def _held(lock_path: Path) -> bool:
    try:
        descriptor = os.open(lock_path, os.O_RDWR)
    except PermissionError:  # another user's: theirs to judge
        return True
    except FileNotFoundError:
        try:
            return time.time() - lock_path.parent.stat().st_mtime < UNLOCKED_GRACE_SECONDS
        except FileNotFoundError:  # removed meanwhile
            return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # releases a lock taken here
    return False
