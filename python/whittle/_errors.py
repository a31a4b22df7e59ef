"""The exceptions whittle raises: one base class, a subclass per kind of failure."""

from __future__ import annotations

from typing import NoReturn


class Error(Exception):
    """A whittle failure. ``str(e)`` is the one-line message the CLI prints."""


class SettingsError(Error, ValueError):
    """The settings are wrong: an unknown pass or key, a bad value, a config file that
    does not parse, calibration data that does not fit the model."""


class ModelError(Error, ValueError):
    """The model cannot be read or does not make sense (bad protobuf, a graph that
    refers to missing values, a ModelProto over 2 GiB)."""


class FileError(Error, OSError):
    """A file could not be read or written (nothing is left half-written)."""


class VerificationError(Error):
    """``verify=True`` found changed outputs it could not roll back, or
    ``verify="strict"`` found the outputs changed or the budget missed."""


class InternalError(Error):
    """A bug in whittle (a Rust panic, caught before it reached Python)."""


_KINDS = {
    "settings": SettingsError,
    "model": ModelError,
    "io": FileError,
    "verification": VerificationError,
    "internal": InternalError,
}


def reraise(e: Exception) -> NoReturn:
    """Raises the class for a native ``WhittleError(kind, message)``."""
    kind, message = e.args
    raise _KINDS.get(kind, Error)(message) from None
