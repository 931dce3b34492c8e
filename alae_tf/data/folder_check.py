"""Which image files of a folder decode, remembered between the commands that open it.

Opening a `--dataset folder` decodes every file once, so that a truncated or corrupt file is
skipped with its reason at the start rather than failing training hours later. For tens of
thousands of large JPEGs that is minutes, and train (at every start and resume), evaluate and
edit each open the folder: so each file's result is kept in a cache file per folder, keyed by
the file's relative path, size and modification time, and a later open decodes only the files
that are new or changed. The cache lives under folder_checks/ of `alae_tf.cache.cache_dir()`
(ALAE_TF_CACHE, default ~/.cache/alae_tf), not in the data folder, which may be read-only. One
that cannot be read is ignored (every file is checked, as with no cache); one that cannot be
written is reported once per open, and the next open checks everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import PIL

from alae_tf.atomic_file import write_text_atomically
from alae_tf.cache import cache_dir
from alae_tf.data.files import check_decodes, ordered_map, returning_errors, unreadable_reason
from alae_tf.progress import progress_bar

logger = logging.getLogger(__name__)

FORMAT = "alae_tf.folder_check"
VERSION = 2  # 2: each result also says whether the image has transparency
SHOWN_FROM = 2000  # files to decode; fewer are checked in a few seconds, without a progress line


def cache_file(root: Path) -> Path:
    """One file per folder, named by a hash of its absolute path."""
    digest = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:20]
    return cache_dir() / "folder_checks" / f"{digest}.json"


def check_files(root: Path, files: list[Path]) -> list[tuple[str, tuple[int, int], bool] | str]:
    """For each of `files` (under `root`): (PIL mode, (width, height), transparent) when it decodes, else the
    reason it does not. Decodes only the files the cache has no result for at their size and time."""
    path = cache_file(root)
    known = _read(path, root)
    keys = [_key(root, file) for file in files]
    results = [known.get(key) for key in keys]
    unknown = [i for i, result in enumerate(results) if result is None]
    if unknown:
        progress = None
        if len(unknown) >= SHOWN_FROM:
            what = f"{len(unknown)} image files" if len(unknown) == len(files) else f"{len(unknown)} new or changed image files"
            print(f"checking that the {what} of {root} decode (once: the results are kept in {path})", flush=True)
            progress = progress_bar(len(unknown), unit_name="file")
        for i, checked in zip(unknown, ordered_map(returning_errors(check_decodes), [files[i] for i in unknown])):
            results[i] = unreadable_reason(checked) if isinstance(checked, Exception) else checked
            if progress:
                progress.add(1)
        _write(path, root, dict(zip(keys, results)))
    return results


def _key(root: Path, file: Path) -> str:
    """relative path, size and modification time: what changes when a file is replaced or rewritten."""
    try:
        stat = file.stat()
    except OSError:  # gone since the listing: decoded (and reported) as any unreadable file
        return f"{file.relative_to(root).as_posix()}\0missing"
    return f"{file.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}"


def _read(path: Path, root: Path) -> dict:
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not (isinstance(cached, dict) and cached.get("format") == FORMAT and cached.get("version") == VERSION
            and cached.get("pillow") == PIL.__version__ and cached.get("root") == str(root.resolve())):
        return {}  # another layout, or another Pillow, which may decode files differently
    return {key: value if isinstance(value, str) else (value[0], tuple(value[1]), value[2])
            for key, value in cached.get("files", {}).items() if "\0missing" not in key}


def _write(path: Path, root: Path, results: dict) -> None:
    content = {"format": FORMAT, "version": VERSION, "pillow": PIL.__version__, "root": str(root.resolve()),
               "files": {key: value if isinstance(value, str) else [value[0], list(value[1]), value[2]] for key, value in results.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(content))
    except OSError as exc:
        logger.warning("cannot keep the folder check in %s (%s): the next open of %s checks every file again "
                       "(set ALAE_TF_CACHE to a writable directory)", path, exc.strerror or exc, root)
