"""TranslationGrid: rows of A | G(A) | B (CycleGAN adds reconstructions) every N iterations.

The grid's pairs are the first ``num_images`` of the datamodule's val split (``example_batch``),
fixed for the whole run, so grids from different iterations show the same inputs. Translation runs
in eval mode with a seeded generator for the model's noise (pix2pix's dropout), so the callback
never advances the training RNG and a resumed run stays equal to an uninterrupted one. The
columns come from the model (`TranslationModel.grid_columns`). The PNG goes to
``<run dir>/<dirname>/iter_XXXXXXXX.png`` and the grid to the loggers under ``log_key``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch

from genmodels.callbacks.sample_grid import _log_grid
from genmodels.gans.translation import seeded_noise
from genmodels.images import save_png, uint8_grid

__all__ = ["TranslationGrid"]


class TranslationGrid(pl.Callback):
    """Log a grid of translations of fixed val pairs, one pair per row.

    Args:
        every_n_iterations: interval in model iterations; 0: only when training ends.
        num_images: pairs (rows) in the grid.
        seed: seed of the model's noise while translating.
        dirname: folder under the run directory for the PNG files.
        log_key: key of the image in the logger.
    """

    def __init__(
        self,
        every_n_iterations: int = 1000,
        num_images: int = 8,
        seed: int = 0,
        dirname: str = "translations",
        log_key: str = "translations",
    ) -> None:
        if every_n_iterations < 0 or num_images < 1:
            raise ValueError(f"every_n_iterations must be >= 0 and num_images >= 1, got {every_n_iterations}, {num_images}")
        self.every_n_iterations, self.num_images, self.seed = every_n_iterations, num_images, seed
        self.dirname, self.log_key = dirname, log_key
        self.last_path: Optional[Path] = None
        self._batch: Optional[dict[str, torch.Tensor]] = None
        self._last_iteration: Optional[int] = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        datamodule = trainer.datamodule
        if not callable(getattr(datamodule, "example_batch", None)):
            raise ValueError("TranslationGrid needs a translation datamodule (PairedImageDataModule / UnpairedImageDataModule)")
        with torch.random.fork_rng(devices=[]):
            self._batch = datamodule.example_batch(self.num_images)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n, iteration = self.every_n_iterations, pl_module.iteration
        if n and iteration % n == 0 and iteration != self._last_iteration:
            self._last_iteration = iteration
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self._last_iteration != pl_module.iteration:
            self.write(trainer, pl_module)

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        """Translate, save the PNG and log the grid (rank 0 only)."""
        if not trainer.is_global_zero or self._batch is None:
            return None
        columns = self._translate(pl_module)
        # Interleave so each row is one example: row i = (col_0[i], col_1[i], ...).
        images = torch.stack(columns, dim=1).flatten(0, 1)
        grid = uint8_grid(images, nrow=len(columns))
        iteration = pl_module.iteration
        path = save_png(grid, Path(trainer.default_root_dir) / self.dirname / f"iter_{iteration:08d}.png")
        for logger in trainer.loggers:
            _log_grid(logger, self.log_key, grid, iteration)
        self.last_path, self._last_iteration = path, iteration
        return path

    @torch.no_grad()
    def _translate(self, pl_module: Any) -> list[torch.Tensor]:
        batch = {k: v.to(pl_module.device) for k, v in self._batch.items()}
        was_training = pl_module.training
        pl_module.eval()
        try:
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            with seeded_noise(generator, pl_module.device):
                return [c.float().cpu() for c in pl_module.grid_columns(batch)]
        finally:
            pl_module.train(was_training)
