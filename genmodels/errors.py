"""The one error type for mistakes a user can fix.

Library code (models, datamodules, apps, commands) raises `UserError` (or a subclass) with one line
that says what is wrong and how to fix it; the command layer prints ``genmodels: error: <message>``
and exits 2, without a traceback. Anything else that escapes, a plain ``ValueError`` or ``OSError``
included, is a bug and keeps its traceback.

The subclasses also derive from the built-in exception a Python caller would expect, so library
users can keep catching ``ValueError`` or ``FileNotFoundError``:

>>> issubclass(InvalidValue, ValueError), issubclass(MissingFile, FileNotFoundError)
(True, True)
"""

from __future__ import annotations

__all__ = ["UserError", "InvalidValue", "MissingFile", "Unreachable"]


class UserError(Exception):
    """A bad input (argument, config value, file, checkpoint) explained in one line with its fix."""


class InvalidValue(UserError, ValueError):
    """An argument, option or config value out of its range or of the wrong kind."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the user named (or must provide) is not there."""


class Unreachable(UserError, ConnectionError):
    """A download the user asked for failed (offline node, blocked mirror); says what to fetch by hand."""
