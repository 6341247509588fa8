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

from genmodels.base import GenerativeModel
from genmodels.callbacks.base import ImageCallback, eval_mode
from genmodels.images import uint8_grid
from genmodels.errors import InvalidValue

__all__ = ["SampleGrid"]


#: Most images in one logged grid (a 64x64 grid of 64 px images is already 4096 x 4096 pixels).
MAX_GRID_SAMPLES = 4096

class SampleGrid(ImageCallback):
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
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or not 1 <= num_samples <= MAX_GRID_SAMPLES:
            raise InvalidValue(f"sample_grid.num_samples must be an integer from 1 to {MAX_GRID_SAMPLES} (images in one "
                             f"logged grid), got {num_samples!r}")
        super().__init__(every_n_iterations, dirname, log_key)
        self.num_samples, self.nrow, self.seed = num_samples, nrow, seed

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> torch.Tensor:
        return uint8_grid(self._sample(pl_module), nrow=self.nrow)

    @torch.no_grad()
    def _sample(self, pl_module: GenerativeModel) -> torch.Tensor:
        with eval_mode(pl_module):
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            return pl_module.sample(self.num_samples, generator=generator)
