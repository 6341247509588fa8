"""RPrecision: R-precision of a text-to-image model during training, with a DAMSM's encoders.

Every ``every_n_iterations`` (and when training ends) the model draws one image per validation
caption (caption 0 of the first ``num_captions`` validation images) with a fixed seed, and
`genmodels.text.metrics.r_precision` ranks its caption among up to 99 mismatched ones by DAMSM
similarity. Logged as ``val/r_precision_damsm`` with ``val/r_precision_candidates`` (chance is
1 / candidates), against the iteration. Computed on rank 0 only (there are no collectives in it);
the global RNG is not touched, so resumed runs stay exact.
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
import torch

from genmodels.callbacks.base import IterationCallback, eval_mode
from genmodels.text.damsm import DAMSM, load_damsm
from genmodels.text.metrics import r_precision
from genmodels.errors import InvalidValue

__all__ = ["RPrecision"]


class RPrecision(IterationCallback):
    """Log R-precision (Xu et al. 2018) every ``every_n_iterations``.

    Args:
        damsm_ckpt: the DAMSM checkpoint (``genmodels train-damsm``) of the same data.
        every_n_iterations: interval in model iterations; 0 only at the end of training.
        num_captions: validation captions (one image each).
        seed: seed of the generated images and of the mismatched captions.
    """

    def __init__(self, damsm_ckpt: str, every_n_iterations: int = 5000, num_captions: int = 1000, seed: int = 0) -> None:
        if every_n_iterations < 0 or num_captions < 2:
            raise InvalidValue("RPrecision needs every_n_iterations >= 0 and num_captions >= 2")
        super().__init__(every_n_iterations)
        self.damsm_ckpt, self.num_captions, self.seed = damsm_ckpt, num_captions, seed
        self._damsm: Optional[DAMSM] = None
        self.last_value: Optional[dict[str, float]] = None

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> Optional[dict[str, float]]:
        if not trainer.is_global_zero:
            return None
        if self._damsm is None:
            self._damsm = load_damsm(self.damsm_ckpt)
        captions = [caps[0] for caps in trainer.datamodule.records("val").captions[: self.num_captions]]
        with eval_mode(pl_module), torch.no_grad():
            result = r_precision(pl_module, self._damsm, captions, seed=self.seed)
        values = {"val/r_precision_damsm": result["r_precision"], "val/r_precision_candidates": result["candidates"]}
        for logger in trainer.loggers:
            logger.log_metrics(dict(values, iteration=pl_module.iteration), step=pl_module.iteration)
        self.last_value = values
        return values
