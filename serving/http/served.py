"""The model a server answers with: the newest version of an export's model directory, followed
as `tensorflow_model_server` follows its base path (version policy "latest"): every
`poll_seconds` the directory is listed, and when its newest version is not the one served (a new
export, or the served one deleted), or when the served version's files were replaced (an export
with --overwrite; tensorflow_model_server keeps the old ones), that version is loaded in the
background and then answers every request that starts after it. Requests already running finish
on the version they began with. A version that fails to load (say, copied in by hand and still
incomplete) is logged and tried again once its files change; the served one stays.

At start the newest version that loads is served (newer ones that do not are logged and
watched). Given a version directory (EXPORT/onnx/NAME/VERSION), the server keeps that version:
nothing is watched.
"""

import logging
import threading
from pathlib import Path

from serving.layout import FLOAT32, find_onnx_model_dir, version_dirs
from serving.onnx_model import ALAEOnnx

log = logging.getLogger(__name__)


class ServedModel:
    """`model` is the ALAEOnnx that answers now; `start()` / `stop()` the background watch."""

    def __init__(self, path, name=None, variant=FLOAT32, threads=None, poll_seconds=1.0):
        self._options = {"threads": threads, "variant": variant}
        self._refused = None  # (version, its files' sizes and times) of the last version that failed to load
        model_dir = find_onnx_model_dir(path, name)
        model = ALAEOnnx(path if model_dir is None else model_dir, **self._options)  # the newest that loads
        self._serve(model, version_files(model.path))
        if self.model.skipped_versions:  # the watch tries the newest of them again once its files change
            newest = self.model.skipped_versions[0]
            self._refused = (int(newest.name), version_files(newest))
        self.model_dir = model_dir if poll_seconds else None
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = None

    def _serve(self, model: ALAEOnnx, files: tuple) -> None:
        self.model = model
        self._served_files = files  # as they were before the load: a replacement during it is loaded next

    @property
    def watching(self) -> bool:
        return self.model_dir is not None

    def start(self) -> None:
        if self.watching and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="served-model-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # a listing or load that fails in an unforeseen way must not end the watch
                log.exception("checking %s for a newer version failed; still serving version %s",
                              self.model_dir, self.model.version)

    def check(self) -> None:
        """Serve the newest version of the model directory if another one is served, or if the
        served one's files were replaced (python -m export --overwrite)."""
        present = version_dirs(self.model_dir)
        served = self.model.version
        if not present:
            return
        version, newest = present[-1]
        files = version_files(newest)
        if (version == served and files == self._served_files) or self._refused == (version, files):
            return
        try:
            model = ALAEOnnx(newest, **self._options)
            if model.metadata["model_name"] != self.model.metadata["model_name"]:
                raise ValueError(f"it is an export of model {model.metadata['model_name']!r}")
        except Exception as exc:  # missing or damaged files, another model
            self._refused = (version, files)
            log.warning("version %s in %s cannot be served (%s); still serving version %s; it is tried again "
                        "when its files change", version, self.model_dir, exc, served)
            return
        self._serve(model, files)
        if version == served:
            log.info("now serving the new files of version %s of %s (replaced)", version, model.metadata["model_name"])
        else:
            log.info("now serving version %s of %s (was version %s)", version, model.metadata["model_name"], served)


def version_files(version_dir: Path) -> tuple:
    """The names, sizes and modification times of a version directory's files: what changes while
    one is being copied in."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in version_dir.iterdir()))
    except OSError:
        return ()
