"""Files that are never seen half-written."""

import os
from pathlib import Path


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write `text` to PATH.partial, then rename it over PATH: a crash mid-write leaves the
    previous file in place, and a reader (a resume, TF-Serving polling its config) never sees a
    half-written one."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
