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

from genmodels.callbacks.base import ImageCallback, eval_mode
from genmodels.gans.translation import seeded_noise
from genmodels.images import uint8_grid
from genmodels.errors import InvalidValue

__all__ = ["TranslationGrid"]


class TranslationGrid(ImageCallback):
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
            raise InvalidValue(f"every_n_iterations must be >= 0 and num_images >= 1, got {every_n_iterations}, {num_images}")
        super().__init__(every_n_iterations, dirname, log_key)
        self.num_images, self.seed = num_images, seed
        self._batch: Optional[dict[str, torch.Tensor]] = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        datamodule = trainer.datamodule
        # getattr: fixed examples exist on translation datamodules only (genmodels never imports datamodules).
        if not callable(getattr(datamodule, "example_batch", None)):
            raise InvalidValue("TranslationGrid needs a translation datamodule (PairedImageDataModule / UnpairedImageDataModule)")
        with torch.random.fork_rng(devices=[]):
            self._batch = datamodule.example_batch(self.num_images)

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        """Translate, save the PNG and log the grid (rank 0 only; nothing before `on_fit_start`)."""
        return None if self._batch is None else super().write(trainer, pl_module)

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> torch.Tensor:
        columns = self._translate(pl_module)
        # Interleave so each row is one example: row i = (col_0[i], col_1[i], ...).
        return uint8_grid(torch.stack(columns, dim=1).flatten(0, 1), nrow=len(columns))

    @torch.no_grad()
    def _translate(self, pl_module: Any) -> list[torch.Tensor]:
        batch = {k: v.to(pl_module.device) for k, v in self._batch.items()}
        with eval_mode(pl_module):
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            with seeded_noise(generator, pl_module.device):
                return [c.float().cpu() for c in pl_module.grid_columns(batch)]
