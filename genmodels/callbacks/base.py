"""The schedule every periodic callback shares, and the picture writer of the image callbacks.

`IterationCallback` acts every ``every_n_iterations`` model iterations (``pl_module.iteration``,
the paper's count of generator updates, not ``trainer.global_step``), once per iteration value,
and once more when training ends (unless that iteration was just handled). The once-per-value
guard matters: with gradient accumulation, or a manual-optimization model whose iteration only
advances on some batches, ``on_train_batch_end`` sees the same iteration several times.

`ImageCallback` adds what every picture callback does: on rank 0 only (the pictures involve no
collectives), render in eval mode under ``no_grad`` with the mode restored afterwards, save the
uint8 picture as ``<run>/<dirname>/<prefix>iter_XXXXXXXX.png`` and hand it to the loggers with
`log_image`, against the ``iteration`` axis.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor

from genmodels.images import save_png
from genmodels.errors import InvalidValue

__all__ = ["IterationCallback", "ImageCallback", "log_image", "eval_mode"]


class IterationCallback(pl.Callback):
    """Calls `fire` every ``every_n_iterations`` iterations (0: never periodically) and at the end.

    Args:
        every_n_iterations: interval in model iterations; 0 acts only when training ends.
        at_end: also act when training ends (if that iteration was not handled already).
    """

    def __init__(self, every_n_iterations: int, at_end: bool = True) -> None:
        if every_n_iterations < 0:
            raise InvalidValue(f"{type(self).__name__} every_n_iterations must be >= 0, got {every_n_iterations}")
        self.every_n_iterations, self.at_end = every_n_iterations, at_end
        self.last_iteration: Optional[int] = None

    def is_due(self, trainer: pl.Trainer, pl_module: Any, batch_idx: int) -> bool:
        """Whether the current batch ends a periodic interval (subclasses may add other triggers).

        Iteration 0 is no interval's end: it is seen only by the first micro-batches of an
        accumulated update, before anything was trained.
        """
        n, iteration = self.every_n_iterations, pl_module.iteration
        return bool(n) and iteration > 0 and iteration % n == 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.iteration != self.last_iteration and self.is_due(trainer, pl_module, batch_idx):
            self.last_iteration = pl_module.iteration
            self.fire(trainer, pl_module, at_end=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.at_end and pl_module.iteration != self.last_iteration:
            self.last_iteration = pl_module.iteration
            self.fire(trainer, pl_module, at_end=True)

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        """The callback's action at this iteration (``at_end``: called from ``on_train_end``)."""
        raise NotImplementedError


class ImageCallback(IterationCallback):
    """Writes the picture of `render` every N iterations and at the end (rank 0, eval mode).

    Args:
        every_n_iterations: interval in model iterations; 0 writes only when training ends.
        dirname: folder under the run directory (``trainer.default_root_dir``).
        log_key: key of the picture in the loggers.
        file_prefix: start of the file names, before ``iter_XXXXXXXX.png``.
        at_end: also write when training ends.
    """

    def __init__(
        self, every_n_iterations: int, dirname: str, log_key: str, file_prefix: str = "", at_end: bool = True
    ) -> None:
        super().__init__(every_n_iterations, at_end)
        self.dirname, self.log_key, self.file_prefix = dirname, log_key, file_prefix
        self.last_path: Optional[Path] = None

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        self.write(trainer, pl_module)

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        """Render, save the PNG and log it; returns the PNG path (None off rank 0)."""
        if not trainer.is_global_zero:
            return None
        iteration = pl_module.iteration
        with eval_mode(pl_module), torch.no_grad():
            picture = self.render(trainer, pl_module, self.path(trainer, iteration, ""))
        path = save_png(picture, self.path(trainer, iteration, ".png"))
        for logger in trainer.loggers:
            log_image(logger, self.log_key, picture, iteration, self.caption(iteration))
        self.last_path = path
        return path

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> Tensor:
        """The uint8 (3, H, W) picture; ``stem`` (the PNG path without suffix) names any extra file."""
        raise NotImplementedError

    def caption(self, iteration: int) -> str:
        return f"iteration {iteration}"

    def path(self, trainer: pl.Trainer, iteration: int, suffix: str) -> Path:
        return Path(trainer.default_root_dir) / self.dirname / f"{self.file_prefix}iter_{iteration:08d}{suffix}"


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode inside the block (no BatchNorm statistics update, no dropout), the old mode after it."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def log_image(logger: Any, key: str, picture: Tensor, iteration: int, caption: Optional[str] = None) -> None:
    """Log a uint8 (3, H, W) picture as is (never min-max rescaled) against ``iteration``.

    W&B gets it under ``key`` with an ``iteration`` value in the same row; TensorBoard at step
    ``iteration``. Other loggers take no images and are skipped.
    """
    if isinstance(logger, WandbLogger):
        import wandb

        image = wandb.Image(picture.permute(1, 2, 0).numpy(), caption=caption or f"iteration {iteration}")
        logger.experiment.log({key: image, "iteration": iteration})
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, picture, global_step=iteration)
