"""SampleGrid: a fixed-noise sample grid every N iterations, logged and saved as PNG.

The noise is drawn from a dedicated, seeded ``torch.Generator`` on every call, so grids from
different iterations show the same latents, and sampling never advances the training RNG (a
resumed run stays equal to an uninterrupted one). Samples are drawn in eval mode so BatchNorm
running statistics are not updated by the callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

from genmodels.base import GenerativeModel
from genmodels.images import save_png, uint8_grid

__all__ = ["SampleGrid"]


class SampleGrid(pl.Callback):
    """Log a uint8 grid of ``num_samples`` fixed-noise samples every ``every_n_iterations``.

    Args:
        every_n_iterations: interval in model iterations (batches), not ``trainer.global_step``;
            0 disables the periodic grid. A final grid is always written when training ends.
        num_samples: images in the grid.
        nrow: images per row (default: a square grid).
        seed: seed of the fixed noise.
        dirname: folder under the run directory for the PNG files.
        log_key: key of the image in the logger.
    """

    def __init__(
        self,
        every_n_iterations: int = 500,
        num_samples: int = 64,
        nrow: Optional[int] = None,
        seed: int = 0,
        dirname: str = "samples",
        log_key: str = "samples",
    ) -> None:
        if every_n_iterations < 0:
            raise ValueError(f"sample_grid.every_n_iterations must be >= 0, got {every_n_iterations}")
        if num_samples < 1:
            raise ValueError(f"sample_grid.num_samples must be >= 1, got {num_samples}")
        self.every_n_iterations = every_n_iterations
        self.num_samples, self.nrow, self.seed = num_samples, nrow, seed
        self.dirname, self.log_key = dirname, log_key
        self.last_path: Optional[Path] = None
        self._last_iteration: Optional[int] = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n, iteration = self.every_n_iterations, pl_module.iteration
        # The iteration does not advance on every batch (gradient accumulation): act once per value.
        if n and iteration % n == 0 and iteration != self._last_iteration:
            self._last_iteration = iteration
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.last_path is None or not self.last_path.name.endswith(f"{pl_module.iteration:08d}.png"):
            self.write(trainer, pl_module)

    def write(self, trainer: pl.Trainer, pl_module: GenerativeModel) -> Optional[Path]:
        """Sample, save the PNG and log the grid (rank 0 only: sampling here has no collectives)."""
        if not trainer.is_global_zero:
            return None
        grid = uint8_grid(self._sample(pl_module), nrow=self.nrow)
        iteration = pl_module.iteration
        path = save_png(grid, Path(trainer.default_root_dir) / self.dirname / f"iter_{iteration:08d}.png")
        for logger in trainer.loggers:
            _log_grid(logger, self.log_key, grid, iteration)
        self.last_path = path
        return path

    @torch.no_grad()
    def _sample(self, pl_module: GenerativeModel) -> torch.Tensor:
        was_training = pl_module.training
        pl_module.eval()
        try:
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            return pl_module.sample(self.num_samples, generator=generator)
        finally:
            pl_module.train(was_training)


def _log_grid(logger: Any, key: str, grid: torch.Tensor, iteration: int) -> None:
    if isinstance(logger, WandbLogger):
        import wandb

        # A uint8 HWC array is logged as is (no min-max rescaling by wandb.Image).
        image = wandb.Image(grid.permute(1, 2, 0).numpy(), caption=f"iteration {iteration}")
        logger.experiment.log({key: image, "iteration": iteration})
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, grid, global_step=iteration)
