"""Stop a diverged run: a non-finite loss or weight ends training, and is never checkpointed.

A run whose learning rate is far too high (or whose loss overflows) goes on "training" on NaN
and, unchecked, writes checkpoints full of NaN over the last good ones. `NonFiniteGuard`
checks the model's parameters and buffers and the logged training losses every
``every_n_iterations`` iterations (by default on logging iterations, which already synchronize
with the device, so the hot path gains no host sync), and `IterationCheckpoint` checks the
weights once more before every save. Either raises `NonFiniteError`: the run stops with one line
naming the iteration and the last good checkpoint, which is left as it was; ``genmodels fit``
exits with status 2.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pytorch_lightning as pl
import torch

from genmodels.base import training_iteration
from genmodels.errors import UserError

__all__ = ["NonFiniteError", "NonFiniteGuard", "first_nonfinite"]


class NonFiniteError(UserError):
    """Training produced a non-finite loss or weight."""


def first_nonfinite(module: torch.nn.Module) -> Optional[str]:
    """The name of the first floating-point parameter or buffer holding NaN/inf, or None.

    One host sync when everything is finite (a single reduced flag); more only on failure.
    """
    named = [(n, t) for n, t in module.state_dict().items() if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not named:
        return None
    flags = torch.stack([torch.isfinite(t).all() for _, t in named])
    if bool(flags.all()):
        return None
    return next(name for (name, _), ok in zip(named, flags.tolist()) if not ok)


def diverged_message(iteration: int, what: str, trainer: pl.Trainer) -> str:
    """One line: where it diverged, what is kept, what to do."""
    ckpt = trainer.checkpoint_callback
    # getattr: IterationCheckpoint records it, Lightning's ModelCheckpoint does not (checkpoint.py imports this module).
    saved = getattr(ckpt, "last_saved_iteration", None) if ckpt is not None else None
    if saved is not None:
        kept = f"the last good checkpoint, {ckpt.last_model_path or ckpt.dirpath} (iteration {saved}), is kept"
    elif trainer.ckpt_path:
        kept = f"the checkpoint this run resumed from, {trainer.ckpt_path}, is kept"
    else:
        kept = "no checkpoint was written in this launch"
    return (
        f"training diverged at iteration {iteration}: {what} is not finite; nothing non-finite was "
        f"checkpointed and {kept}. Lower the learning rate or clip gradients (grad_clip_norm), then "
        "resume with --ckpt_path last"
    )


class NonFiniteGuard(pl.Callback):
    """Raise `NonFiniteError` when the weights or the logged losses stop being finite.

    Args:
        every_n_iterations: how often to check; None checks on the Trainer's logging iterations
            (``log_every_n_steps``), when the losses are read back anyway.
    """

    def __init__(self, every_n_iterations: Optional[int] = None) -> None:
        self.every_n_iterations = every_n_iterations

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        every = self.every_n_iterations or trainer.log_every_n_steps or 1
        iteration = training_iteration(trainer)
        if iteration % every:
            return
        what = None
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and "loss" in key and not math.isfinite(float(value)):
                what = f"the loss {key} ({float(value)})"
                break
        if what is None:
            name = first_nonfinite(pl_module)
            what = None if name is None else f"the weight {name}"
        # Every rank stops together: a rank left running would wait forever in the next all-reduce.
        stop = what is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            raise NonFiniteError(diverged_message(iteration, what or "a loss or weight on another rank", trainer))
