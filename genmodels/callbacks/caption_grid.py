"""CaptionGrid: images generated from fixed captions, one row per caption, written with the text.

For text-to-image models. Every ``every_n_iterations`` (and when training ends) the callback draws
``samples_per_caption`` images for each caption with a seeded generator (the same noise at every
iteration, the training RNG untouched, eval mode), then:

- writes ``<run>/<dirname>/iter_XXXXXXXX.png``: each row is headed by its caption, drawn in the
  image with PIL's default font (long captions are cut to the row's width, the full text is in
  the .txt next to it);
- logs one ``wandb.Image`` per caption with the caption as its W&B caption (key ``log_key``).

Captions: the given ``captions``, else the first ``num_captions`` validation captions of the
datamodule (``datamodule.records("val")``, one per image).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from genmodels.atomic import atomic_write, atomic_write_text
from genmodels.callbacks.base import IterationCallback, eval_mode
from genmodels.images import captioned_grid, uint8_grid
from genmodels.errors import InvalidValue

__all__ = ["CaptionGrid"]


class CaptionGrid(IterationCallback):
    """Generated images for fixed captions, logged with their text (see the module docstring).

    Args:
        every_n_iterations: interval in model iterations; 0 writes only the final grid.
        captions: the captions; None takes the first ``num_captions`` validation captions.
        num_captions: validation captions used when ``captions`` is None.
        samples_per_caption: images per caption (one row).
        seed: seed of the noise.
        dirname: folder under the run directory.
        log_key: key of the images in W&B.
    """

    def __init__(self, every_n_iterations: int = 1000, captions: Optional[list[str]] = None, num_captions: int = 8,
                 samples_per_caption: int = 8, seed: int = 0, dirname: str = "samples/captions",
                 log_key: str = "samples/captions") -> None:
        if every_n_iterations < 0 or num_captions < 1 or samples_per_caption < 1:
            raise InvalidValue("CaptionGrid needs every_n_iterations >= 0, num_captions >= 1 and samples_per_caption >= 1")
        if captions is not None and not captions:
            raise InvalidValue("CaptionGrid captions is empty; give captions or null for validation captions")
        super().__init__(every_n_iterations)
        self.captions, self.num_captions = captions, num_captions
        self.samples_per_caption, self.seed, self.dirname, self.log_key = samples_per_caption, seed, dirname, log_key
        self.last_path: Optional[Path] = None

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        self.write(trainer, pl_module)
    def resolve_captions(self, trainer: pl.Trainer) -> list[str]:
        if self.captions is not None:
            return list(self.captions)
        datamodule = trainer.datamodule
        # getattr: caption records exist on text-image datamodules only (genmodels never imports datamodules).
        if datamodule is None or not callable(getattr(datamodule, "records", None)):
            raise InvalidValue("CaptionGrid without captions needs a TextImageDataModule (or give captions)")
        return [caps[0] for caps in datamodule.records("val").captions[: self.num_captions]]

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        if not trainer.is_global_zero:
            return None
        captions = self.resolve_captions(trainer)
        images = self._sample(pl_module, captions)
        picture = captioned_grid(images, captions, self.samples_per_caption)
        path = Path(trainer.default_root_dir) / self.dirname / f"iter_{pl_module.iteration:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: picture.save(f, format="PNG"))
        atomic_write_text(path.with_suffix(".txt"), "\n".join(captions) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self._log_wandb(logger, images, captions, pl_module.iteration)
        self.last_path = path
        return path

    @torch.no_grad()
    def _sample(self, pl_module: Any, captions: list[str]) -> torch.Tensor:
        with eval_mode(pl_module):
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            repeated = [c for c in captions for _ in range(self.samples_per_caption)]
            return pl_module.sample(len(repeated), condition=repeated, generator=generator).float().cpu()

    def _log_wandb(self, logger: WandbLogger, images: torch.Tensor, captions: list[str], iteration: int) -> None:
        import wandb

        per = self.samples_per_caption
        rows = [wandb.Image(uint8_grid(images[k * per : (k + 1) * per], nrow=per).permute(1, 2, 0).numpy(), caption=caption)
                for k, caption in enumerate(captions)]
        logger.experiment.log({self.log_key: rows, "iteration": iteration})
