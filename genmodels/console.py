"""Third-party console noise that says nothing to a genmodels user, silenced where it is emitted.

Each filter matches one message of one library (never a whole category or logger), so every other
warning still shows:

- Lightning's "💡 Tip … litlogger" advertisement, logged on every Trainer construction;
- Lightning's "Checkpoint directory … exists and is not empty": the CLI refuses a fresh run into a
  directory with checkpoints, so the only time it appears is a legitimate resume;
- Lightning's ``_pytree`` calling ``isinstance(treespec, LeafSpec)``, deprecated by torch >= 2.9
  (Lightning's code, printed once per run, nothing for the user to change).

(W&B's "anonymous setting has no effect" is avoided at its cause, in `genmodels.loggers`.)
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["quiet_third_party_noise"]

_LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_third_party_noise() -> None:
    """Install the filters; idempotent, and called per run since `warnings.catch_warnings` blocks drop filters."""
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    # filterwarnings replaces an identical filter rather than adding a second one.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
