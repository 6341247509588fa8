"""ClassGrid: a sample grid with one row per class, every N iterations, logged and saved as PNG.

Row k holds ``samples_per_class`` samples of class k, and every row uses the same noise (the
seeded generator restarts for each class), so a column shows one z across all classes: the
class changes down a column, everything z controls stays. Works for any
`genmodels.protocols.ClassConditional` model with ``num_classes >= 2``, e.g.
`genmodels.ConditionalGAN`. Saving, logging and the eval-mode, RNG-isolated sampling are
`SampleGrid`'s; files go to ``<default_root_dir>/samples/classes/iter_XXXXXXXX.png``, apart from
the generic grid's ``samples/iter_XXXXXXXX.png``.

Usage in an experiment YAML::

    trainer:
      callbacks:
        - class_path: genmodels.callbacks.ClassGrid
          init_args: {every_n_iterations: 250, samples_per_class: 10}
"""

from __future__ import annotations

from genmodels.errors import InvalidValue

from typing import Any

import pytorch_lightning as pl
import torch

from genmodels.base import GenerativeModel
from genmodels.callbacks.base import eval_mode
from genmodels.callbacks.sample_grid import SampleGrid
from genmodels.protocols import class_count

__all__ = ["ClassGrid", "num_classes"]


class ClassGrid(SampleGrid):
    """Log a uint8 grid with one row per class and one column per fixed latent.

    Args:
        every_n_iterations: interval in model iterations (batches); 0 disables the periodic grid.
            A final grid is always written when training ends.
        samples_per_class: images per row.
        seed: seed of the fixed noise (the same for every row).
        dirname: folder under the run directory for the PNG files.
        log_key: key of the image in the logger.
    """

    def __init__(
        self,
        every_n_iterations: int = 500,
        samples_per_class: int = 8,
        seed: int = 0,
        dirname: str = "samples/classes",
        log_key: str = "samples_by_class",
    ) -> None:
        super().__init__(every_n_iterations, samples_per_class, samples_per_class, seed, dirname, log_key)

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        num_classes(pl_module)  # fail at the start of the run, not at the first grid

    @torch.no_grad()
    def _sample(self, pl_module: GenerativeModel) -> torch.Tensor:
        with eval_mode(pl_module):
            rows = []
            for k in range(num_classes(pl_module)):
                generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
                labels = torch.full((self.num_samples,), k, dtype=torch.int64, device=pl_module.device)
                rows.append(pl_module.sample(self.num_samples, condition=labels, generator=generator))
            return torch.cat(rows)


def num_classes(model: Any) -> int:
    """The model's class count; a clear error for models that are not class-conditional."""
    count = class_count(model)
    if count < 2:
        raise InvalidValue(
            f"ClassGrid needs a class-conditional model (num_classes >= 2); {type(model).__name__} has "
            f"num_classes={count}. Use the generic sample grid (--sample_grid.*) for it"
        )
    return count
