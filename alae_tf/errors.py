"""User-facing errors: the CLIs print their message (no traceback) and exit non-zero."""


class ALAEError(Exception):
    """A problem the user can fix (bad flag, config, data); the message says how."""


class DataError(ALAEError):
    """Missing, corrupt or inconsistent training data."""


class ConfigError(ALAEError):
    """An invalid preset, config file or command-line value."""
