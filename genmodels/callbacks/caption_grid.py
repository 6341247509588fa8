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
from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw
from pytorch_lightning.loggers import WandbLogger

from genmodels.images import uint8_grid

__all__ = ["CaptionGrid", "captioned_grid"]

_TEXT_HEIGHT = 12


def captioned_grid(images: torch.Tensor, captions: Sequence[str], per_caption: int) -> Image.Image:
    """Rows of ``per_caption`` images in [-1, 1], each row headed by its caption (black text on white)."""
    rows = []
    for k, caption in enumerate(captions):
        grid = uint8_grid(images[k * per_caption : (k + 1) * per_caption], nrow=per_caption).permute(1, 2, 0).numpy()
        if grid.shape[2] == 1:
            grid = np.repeat(grid, 3, axis=2)
        header = Image.new("RGB", (grid.shape[1], _TEXT_HEIGHT), (255, 255, 255))
        ImageDraw.Draw(header).text((2, 0), caption, fill=(0, 0, 0))
        rows += [np.asarray(header), grid]
    return Image.fromarray(np.concatenate(rows, axis=0))


class CaptionGrid(pl.Callback):
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
            raise ValueError("CaptionGrid needs every_n_iterations >= 0, num_captions >= 1 and samples_per_caption >= 1")
        if captions is not None and not captions:
            raise ValueError("CaptionGrid captions is empty; give captions or null for validation captions")
        self.every_n_iterations, self.captions, self.num_captions = every_n_iterations, captions, num_captions
        self.samples_per_caption, self.seed, self.dirname, self.log_key = samples_per_caption, seed, dirname, log_key
        self.last_path: Optional[Path] = None
        self._last_iteration: Optional[int] = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n, iteration = self.every_n_iterations, pl_module.iteration
        if n and iteration % n == 0 and iteration != self._last_iteration:
            self._last_iteration = iteration
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self._last_iteration != pl_module.iteration:
            self.write(trainer, pl_module)

    def resolve_captions(self, trainer: pl.Trainer) -> list[str]:
        if self.captions is not None:
            return list(self.captions)
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not callable(getattr(datamodule, "records", None)):
            raise ValueError("CaptionGrid without captions needs a TextImageDataModule (or give captions)")
        return [caps[0] for caps in datamodule.records("val").captions[: self.num_captions]]

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        if not trainer.is_global_zero:
            return None
        captions = self.resolve_captions(trainer)
        images = self._sample(pl_module, captions)
        picture = captioned_grid(images, captions, self.samples_per_caption)
        path = Path(trainer.default_root_dir) / self.dirname / f"iter_{pl_module.iteration:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        path.with_suffix(".txt").write_text("\n".join(captions) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self._log_wandb(logger, images, captions, pl_module.iteration)
        self.last_path = path
        return path

    @torch.no_grad()
    def _sample(self, pl_module: Any, captions: list[str]) -> torch.Tensor:
        was_training = pl_module.training
        pl_module.eval()
        try:
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            repeated = [c for c in captions for _ in range(self.samples_per_caption)]
            return pl_module.sample(len(repeated), condition=repeated, generator=generator).float().cpu()
        finally:
            pl_module.train(was_training)

    def _log_wandb(self, logger: WandbLogger, images: torch.Tensor, captions: list[str], iteration: int) -> None:
        import wandb

        per = self.samples_per_caption
        rows = [wandb.Image(uint8_grid(images[k * per : (k + 1) * per], nrow=per).permute(1, 2, 0).numpy(), caption=caption)
                for k, caption in enumerate(captions)]
        logger.experiment.log({self.log_key: rows, "iteration": iteration})
