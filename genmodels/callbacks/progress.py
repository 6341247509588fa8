"""A progress bar on the run's budget: iteration / max_iterations, it/s, ETA and the main losses.

Lightning's bar counts the batches of the current epoch ("Epoch 12: 17/26"), which says nothing
about a run sized in iterations (``--max_iterations``) and restarts at every epoch. This bar
counts the model's ``iteration`` toward the budget instead, so after a resume (even mid-epoch)
it starts where the run stopped, its rate counts only this launch's iterations (tqdm's
``initial``), and its ETA is the remaining iterations at that rate. The postfix shows the
``train/loss*`` values last logged (``loss_d``, ``loss_g``; ``loss`` for one-network models).
Validation and test keep Lightning's bars (their batches are what they count).
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

__all__ = ["IterationProgressBar"]


def max_iterations_of(trainer: pl.Trainer) -> Optional[int]:
    """The run's budget in iterations: `StopAtIteration`'s, else None (unbounded)."""
    from genmodels.callbacks.stop import StopAtIteration

    budgets = [c.max_iterations for c in trainer.callbacks if isinstance(c, StopAtIteration)]
    return min(budgets) if budgets else None


class IterationProgressBar(TQDMProgressBar):
    """TQDM bar over iterations toward ``max_iterations`` (see the module docstring)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_progress_bar = self.init_train_tqdm()
        start = int(getattr(pl_module, "iteration", 0))
        self.train_progress_bar.reset(total=max_iterations_of(trainer))
        self.train_progress_bar.initial = start  # rate and ETA count this launch's iterations only
        self.train_progress_bar.n = start
        self.train_progress_bar.set_description("iteration")
        self.train_progress_bar.refresh()

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        pass  # one bar for the whole run: epochs do not restart it

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        bar = self.train_progress_bar
        n = int(getattr(pl_module, "iteration", batch_idx + 1))
        if bar is not None and self._should_update(n, bar.total or 0):
            bar.n = n
            bar.set_postfix(self.losses(trainer), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # the bar stays open across epochs; on_train_end closes it

    @staticmethod
    def losses(trainer: pl.Trainer) -> dict[str, str]:
        """The last logged ``train/loss*`` values, short names, 3 significant digits."""
        shown = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/loss"):
                shown[key.removeprefix("train/")] = f"{float(value):.3g}"
        return dict(sorted(shown.items()))
