"""User-facing errors: the CLIs print their message (no traceback) and exit non-zero; and how to
tell a full disk from other failed writes."""

import errno
import os
import re

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class ALAEError(Exception):
    """A problem the user can fix (bad flag, config, data); the message says how."""


class DataError(ALAEError):
    """Missing, corrupt or inconsistent training data."""


class ConfigError(ALAEError):
    """An invalid preset, config file or command-line value."""


def out_of_disk_space(exc: Exception) -> bool:
    """A write failed for want of disk space or quota: an OSError, or a TensorFlow error from a
    file write (which carries only the C library's message, after the file's path)."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL
    return any(os.strerror(code) in str(exc) for code in DISK_FULL)


def written_file(exc: Exception, otherwise: str) -> str:
    """The path in a disk-full error, or `otherwise` where it names none."""
    if isinstance(exc, OSError):
        return str(exc.filename or otherwise)
    found = re.search(rf"(\S+); (?:{'|'.join(os.strerror(code) for code in DISK_FULL)})", str(exc))
    return found.group(1) if found else otherwise


# Lines of a TensorFlow error that say where, not what: its header and the Python stack of the op it
# names ("Detected at node X defined at (most recent call last):", then `File "...", line N` lines).
_WHERE_LINES = ("Graph execution error", "Detected at node", 'File "', "[[")


def first_line(exc: Exception) -> str:
    """The first line of an error that says what happened, without the name of the TensorFlow
    function it ran in (`{{function_node ...}}`)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith(_WHERE_LINES)]
    return re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0]) if lines else type(exc).__name__
