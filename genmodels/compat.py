"""The one place that touches private PyTorch Lightning APIs.

Lightning offers no public way to ask some things the training loop needs. Each use is fenced
here behind a small function, and `tests/genmodels/test_compat.py` checks that the private name
still exists, so a Lightning upgrade that removes it fails loudly in the tests instead of silently
changing behaviour.
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl


def logger_will_write(trainer: pl.Trainer) -> bool:
    """Whether Lightning writes logged values this batch (its own ``log_every_n_steps`` rule)."""
    connector = trainer._logger_connector
    return bool(trainer.loggers) and bool(connector.should_update_logs)


def ddp_kwargs_of(strategy: Any) -> Optional[dict[str, Any]]:
    """The keyword arguments a DDP strategy hands to ``DistributedDataParallel`` (None if not DDP)."""
    return getattr(strategy, "_ddp_kwargs", None) if isinstance(strategy, pl.strategies.DDPStrategy) else None


def batches_that_stepped(trainer: pl.Trainer) -> int:
    """The step Lightning's own ``self.log`` values go to the loggers at (batches that stepped an optimizer).

    Logging extra values at this step keeps them in the same W&B row as the model's logged values.
    """
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)
