"""The model a server answers with: the newest version of an export's model directory, followed
as `tensorflow_model_server` follows its base path (version policy "latest"): every
`poll_seconds` the directory is listed, and when its newest version is not the one served (a new
export, or the served one deleted) that version is loaded in the background and then answers
every request that starts after it. Requests already running finish on the version they began
with. A version that fails to load (say, copied in by hand and still incomplete) is logged and
tried again once its files change; the served one stays.

Given a version directory (EXPORT/onnx/NAME/VERSION), the server keeps that version: nothing
is watched.
"""

import logging
import threading
from pathlib import Path

from serving.layout import FLOAT32, ONNX_METADATA, versions
from serving.onnx_model import ALAEOnnx

log = logging.getLogger(__name__)


class ServedModel:
    """`model` is the ALAEOnnx that answers now; `start()` / `stop()` the background watch."""

    def __init__(self, path, name=None, variant=FLOAT32, threads=None, poll_seconds=1.0):
        self._options = {"threads": threads, "variant": variant}
        self.model = ALAEOnnx(path, name=name, **self._options)
        pinned = (Path(path) / ONNX_METADATA).is_file()
        self.model_dir = None if pinned or not poll_seconds else self.model.path.parent
        # Versions are told by their directory names, as TF-Serving does (not by the metadata,
        # which a version copied in by hand may not have updated).
        self._version = int(self.model.path.name) if self.model_dir else None
        self.poll_seconds = poll_seconds
        self._refused = None  # (version, its files' sizes and times) of the last version that failed to load
        self._stop = threading.Event()
        self._thread = None

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
                              self.model_dir, self.model.metadata["version"])

    def check(self) -> None:
        """Serve the newest version of the model directory if another one is served."""
        present = versions(self.model_dir)
        served = self._version
        if not present or present[-1] == served:
            return
        newest = self.model_dir / str(present[-1])
        files = version_files(newest)
        if self._refused == (present[-1], files):
            return
        try:
            model = ALAEOnnx(newest, **self._options)
            if model.metadata["model_name"] != self.model.metadata["model_name"]:
                raise ValueError(f"it is an export of model {model.metadata['model_name']!r}")
        except Exception as exc:  # missing files, an unreadable graph (ONNX Runtime's own types), another model
            self._refused = (present[-1], files)
            log.warning("version %s in %s cannot be served (%s); still serving version %s; it is tried again "
                        "when its files change", present[-1], self.model_dir, exc, served)
            return
        self.model, self._version = model, present[-1]
        log.info("now serving version %s of %s (was version %s)", present[-1], model.metadata["model_name"], served)


def version_files(version_dir: Path) -> tuple:
    """The names, sizes and modification times of a version directory's files: what changes while
    one is being copied in."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in version_dir.iterdir()))
    except OSError:
        return ()
