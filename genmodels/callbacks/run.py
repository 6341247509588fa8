"""Callbacks the ``genmodels fit|validate|test`` command installs around a run.

`KeepingSaveConfigCallback` keeps every launch's resolved config in the run directory,
`ConfiguredOptimizerSettings` applies a changed optimizer config on resume, and `BatchKeys`
turns a model's KeyError on a batch into a one-line explanation naming both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import SaveConfigCallback

from genmodels.errors import UserError

__all__ = ["KeepingSaveConfigCallback", "ConfiguredOptimizerSettings", "BatchKeys"]


class KeepingSaveConfigCallback(SaveConfigCallback):
    """Save the resolved config in the run directory without ever overwriting an earlier one.

    Lightning's SaveConfigCallback aborts when ``config.yaml`` exists, so a resume into the same
    directory fails; here the first launch's ``config.yaml`` is kept and each later launch is
    recorded as ``config.resume-N.yaml``.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        run_dir = Path(trainer.default_root_dir)
        name = self.config_filename
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            target = run_dir / name
            index = 1
            while target.exists():
                target = run_dir / f"{Path(name).stem}.resume-{index}{Path(name).suffix}"
                index += 1
            self.parser.save(self.config, target, skip_none=False, multifile=self.multifile, overwrite=False)
            self.saved_path = target
        self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)


class ConfiguredOptimizerSettings(pl.Callback):
    """On a resume with a changed config, make the optimizers use the configured settings.

    Restoring the optimizer state also restores each param group's ``lr``, ``betas``, ... and the
    schedulers' ``base_lrs``, which would silently undo a changed learning rate. After the restore,
    the groups take the values of freshly configured optimizers; moments and step counts stay, and
    a schedule keeps its current factor (lr = new base lr * factor).
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        fresh = _optimizers_of(pl_module.configure_optimizers())
        # getattr: Lightning may hand LightningOptimizer wrappers or the raw optimizers.
        restored = [getattr(o, "optimizer", o) for o in trainer.optimizers]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        for old, new in zip(restored, fresh):
            scheduler = next((s for s in schedulers if s.optimizer is old), None)
            for index, (group, configured) in enumerate(zip(old.param_groups, new.param_groups)):
                new_base = configured.get("initial_lr", configured["lr"])
                old_base = group.get("initial_lr", group["lr"])
                factor = group["lr"] / old_base if old_base else 1.0
                for key, value in configured.items():
                    if key not in ("params", "lr", "initial_lr"):
                        group[key] = value
                group["lr"] = new_base * factor
                if "initial_lr" in group:
                    group["initial_lr"] = new_base
                # getattr: LRScheduler has base_lrs; ReduceLROnPlateau and custom schedulers need not.
                if scheduler is not None and hasattr(scheduler, "base_lrs"):
                    scheduler.base_lrs[index] = new_base


def _optimizers_of(configured: Any) -> list[torch.optim.Optimizer]:
    """The optimizers out of any form ``configure_optimizers`` may return."""
    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, dict):
        return _optimizers_of(configured.get("optimizer"))
    if isinstance(configured, (list, tuple)):
        if len(configured) == 2 and isinstance(configured[0], (list, tuple)):
            return _optimizers_of(configured[0])
        return [o for item in configured for o in _optimizers_of(item)]
    return []


class BatchKeys(pl.Callback):
    """Remembers the keys of the batches the datamodule yields, to explain a model's KeyError."""

    def __init__(self) -> None:
        self.keys: Optional[list[str]] = None

    def _record(self, batch: Any) -> None:
        if self.keys is None and isinstance(batch, dict):
            self.keys = sorted(str(k) for k in batch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._record(batch)

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._record(batch)

    def explain(self, err: KeyError, model: Any, datamodule: Any) -> Optional[UserError]:
        key = err.args[0] if err.args else None
        if self.keys is None or not isinstance(key, str) or key in self.keys:
            return None
        return UserError(
            f"{type(model).__name__} reads batch key {key!r}, but {type(datamodule).__name__} yields batches "
            f"with keys {self.keys}; pair the model with a datamodule that provides {key!r} "
            "(see the experiments/ configs of this model)"
        )
