"""Errors that end a job with one clear message instead of a traceback."""

__all__ = ["AepipeError", "SchemaError", "InputError", "ModelDirError", "OptionsError",
           "OutputError"]


class AepipeError(Exception):
    """A problem the user can fix; the CLI prints its message and exits non-zero."""


class SchemaError(AepipeError):
    """A schema file is malformed, or an input file does not match it."""


class InputError(AepipeError):
    """Input files are missing, empty or unreadable."""


class ModelDirError(AepipeError):
    """A model directory is missing, incomplete, incompatible or not writable."""


class OptionsError(AepipeError, ValueError):
    """A job option is out of its range."""


class OutputError(AepipeError):
    """An output location already holds data, or cannot be written."""
