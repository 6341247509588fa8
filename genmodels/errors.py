"""The one error type for mistakes a user can fix.

Library code (models, datamodules, apps, commands) raises `UserError` with one line that says what
is wrong and how to fix it; the command layer prints ``genmodels: error: <message>`` and exits 2,
without a traceback. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A bad input (argument, config value, file, checkpoint) explained in one line with its fix."""
