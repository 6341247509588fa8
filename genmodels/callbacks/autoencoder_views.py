"""Views of an autoencoder's latent space written during training: reconstructions, paths, maps.

- `ReconstructionGrid`: rows of inputs, each above the row of their reconstructions;
- `LatentInterpolation`: decoded points on the path between the codes of two images, linear or
  spherical, as a grid (one pair per row) and an animated GIF;
- `LatentMap`: with ``latent_dim == 2`` the decoded grid over Gaussian quantiles, with any other
  size a PCA scatter plot of the codes of held-out images coloured by label.

The pictures are built by `genmodels.images` from the `genmodels.protocols.Autoencoder` methods
only. Images are taken from the datamodule's ``val`` (or ``test``) loader once and kept, so every
picture of a run shows the same images; they are drawn in eval mode under ``no_grad`` and never
advance the training RNG. Files: ``<run>/<dirname>/iter_XXXXXXXX.png`` (and ``.gif``); logger keys
start with ``samples/`` so W&B plots them against ``iteration``. Only rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor

from genmodels.callbacks.base import ImageCallback
from genmodels.images import interpolate, interpolation_frames, latent_map, path_grid, reconstruction_grid, save_gif
from genmodels.protocols import class_count
from genmodels.errors import InvalidValue

__all__ = ["ReconstructionGrid", "LatentInterpolation", "LatentMap", "take_images"]


class AutoencoderView(ImageCallback):
    """A picture of held-out images every ``every_n_iterations`` and at the end of training.

    Args:
        every_n_iterations: interval in model iterations; 0 writes only when training ends.
        num_images: held-out images the view uses (taken once, then fixed).
        split: ``val`` or ``test``: the datamodule loader the images come from.
        dirname: folder under the run directory.
        log_key: key of the picture in the loggers.
    """

    def __init__(self, every_n_iterations: int, num_images: int, split: str, dirname: str, log_key: str) -> None:
        if num_images < 1:
            raise InvalidValue(f"num_images must be >= 1, got {num_images}")
        if split not in ("val", "test"):
            raise InvalidValue(f"split must be 'val' or 'test', got {split!r}")
        super().__init__(every_n_iterations, dirname, log_key)
        self.num_images, self.split = num_images, split
        self._images: Optional[tuple[Tensor, Optional[Tensor]]] = None

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> Tensor:
        images, labels = self.images(trainer, pl_module)
        return self.draw(pl_module, images, labels if class_count(pl_module) else None, stem)

    def draw(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        """The uint8 (3, H, W) picture of ``images`` (labels only for a conditional model)."""
        raise NotImplementedError

    def images(self, trainer: pl.Trainer, pl_module: Any) -> tuple[Tensor, Optional[Tensor]]:
        """The fixed held-out images in [-1, 1] and their labels, on the model's device."""
        if self._images is None:
            self._images = take_images(trainer, self.split, self.num_images)
        images, labels = self._images
        labels = None if labels is None else labels.to(pl_module.device)
        return _to_model_range(images).to(pl_module.device), labels


class ReconstructionGrid(AutoencoderView):
    """Inputs above their reconstructions, ``nrow`` per row, every N iterations.

    Args:
        every_n_iterations: interval in iterations (0: only when training ends).
        num_images: number of held-out images shown.
        nrow: images per row.
        split: ``val`` or ``test``.
        dirname: folder under the run directory.
        log_key: logger key.
    """

    def __init__(
        self,
        every_n_iterations: int = 500,
        num_images: int = 32,
        nrow: int = 8,
        split: Literal["val", "test"] = "val",
        dirname: str = "reconstructions",
        log_key: str = "samples/reconstructions",
    ) -> None:
        super().__init__(every_n_iterations, num_images, split, dirname, log_key)
        self.nrow = nrow

    def draw(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        return reconstruction_grid(model, images, labels, self.nrow)


class LatentInterpolation(AutoencoderView):
    """Decoded paths between the codes of pairs of held-out images: a PNG grid and an animated GIF.

    Args:
        every_n_iterations: interval in iterations (0: only when training ends).
        num_pairs: pairs of images (rows); image i is paired with image i + num_pairs.
        steps: points per path, both ends included.
        method: ``linear`` or ``spherical`` (slerp).
        gif: also write ``iter_XXXXXXXX.gif`` (the pairs in a column, played forth and back).
        split: ``val`` or ``test``.
        dirname: folder under the run directory.
        log_key: logger key of the grid.
    """

    def __init__(
        self,
        every_n_iterations: int = 500,
        num_pairs: int = 4,
        steps: int = 10,
        method: Literal["linear", "spherical"] = "linear",
        gif: bool = True,
        split: Literal["val", "test"] = "val",
        dirname: str = "interpolations",
        log_key: str = "samples/interpolation",
    ) -> None:
        super().__init__(every_n_iterations, 2 * num_pairs, split, dirname, log_key)
        interpolate(torch.zeros(1, 1), torch.ones(1, 1), steps, method)  # validate now, not at iteration N
        self.num_pairs, self.steps, self.method, self.gif = num_pairs, steps, method, gif

    def draw(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        if len(images) < 2:
            raise InvalidValue("LatentInterpolation needs at least 2 held-out images")
        half = len(images) // 2
        frames = interpolation_frames(
            model, images[:half], images[half : 2 * half], self.steps, self.method, None if labels is None else labels[:half]
        )
        if self.gif:
            save_gif(frames, stem.with_suffix(".gif"), nrow=1, duration_ms=120, bounce=True)
        return path_grid(frames)


class LatentMap(AutoencoderView):
    """The 2-D latent map: decoded grid (latent_dim == 2) or PCA of held-out codes coloured by label.

    Args:
        every_n_iterations: interval in iterations (0: only when training ends).
        num_images: held-out images encoded for the projection.
        grid_size: side of the decoded grid (latent_dim == 2).
        split: ``val`` or ``test``.
        dirname: folder under the run directory.
        log_key: logger key.
    """

    def __init__(
        self,
        every_n_iterations: int = 0,
        num_images: int = 1000,
        grid_size: int = 16,
        split: Literal["val", "test"] = "test",
        dirname: str = "latent_maps",
        log_key: str = "samples/latent_map",
    ) -> None:
        super().__init__(every_n_iterations, num_images, split, dirname, log_key)
        self.grid_size = grid_size
        self.last_kind: Optional[str] = None

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> Tensor:
        if pl_module.latent_dim == 2:  # the decoded grid needs no data
            self.last_kind, picture = latent_map(pl_module, grid_size=self.grid_size)
            return picture
        images, labels = self.images(trainer, pl_module)
        # Labels colour the points whether or not the model is conditional.
        self.last_kind, picture = latent_map(pl_module, images, labels, self.grid_size)
        return picture


def take_images(trainer: pl.Trainer, split: str, n: int) -> tuple[Tensor, Optional[Tensor]]:
    """The first ``n`` images (as loaded, on the CPU) and labels of the datamodule's ``split`` loader.

    Falls back to the trainer's validation loaders when there is no datamodule.
    """
    datamodule = trainer.datamodule
    # getattr: Lightning lets a datamodule define only some of the split loaders.
    if datamodule is not None and hasattr(datamodule, f"{split}_dataloader"):
        loaders: Any = getattr(datamodule, f"{split}_dataloader")()
    else:
        loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    if loader is None:
        raise InvalidValue(f"no {split} data to draw the view from: give the trainer a datamodule or val loader")
    images, labels = [], []
    # Starting a DataLoader iterator draws a seed from the global RNG; a view must not move the
    # training stream (a resumed run, which fetches again, would diverge from an uninterrupted one).
    with torch.random.fork_rng(devices=[]):
        for batch in loader:
            images.append(batch["image"])
            labels.append(batch.get("label"))
            if sum(len(b) for b in images) >= n:
                break
    has_labels = all(label is not None for label in labels)
    return torch.cat(images)[:n], torch.cat(labels)[:n].long() if has_labels else None


def _to_model_range(images: Tensor) -> Tensor:
    # Loaders yield uint8 (the datamodule converts on the device in on_after_batch_transfer).
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
