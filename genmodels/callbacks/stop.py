"""Stop training after a number of model iterations.

``trainer.max_steps`` counts optimizer steps, which is twice the number of batches for a GAN (and
``1 + 1/n_critic`` times with ``n_critic`` > 1); budgets in this project are given in iterations.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from genmodels.errors import InvalidValue

__all__ = ["StopAtIteration"]


class StopAtIteration(pl.Callback):
    """Set ``trainer.should_stop`` once ``pl_module.iteration`` reaches ``max_iterations``."""

    def __init__(self, max_iterations: int) -> None:
        if max_iterations < 1:
            raise InvalidValue(f"max_iterations must be >= 1, got {max_iterations}")
        self.max_iterations = max_iterations

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # A run resumed at (or past) its budget trains nothing more.
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True
