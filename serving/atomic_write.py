"""Files written whole or not at all, for the serving side and alae_tf alike (no TensorFlow here)."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def replacing(path):
    """Yields PATH.PID.partial to write; renamed over PATH when the block ends, removed when it
    fails. A reader never sees half a file, and a crash or a full disk leaves the earlier file or
    none (the process id keeps two processes writing the same path apart). An OSError on the
    partial file names PATH, the file the user asked for."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:
        if exc.filename == str(partial):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        partial.unlink(missing_ok=True)  # gone already after the rename
