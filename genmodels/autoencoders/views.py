"""Views of an autoencoder's latent space: reconstructions, interpolations, latent maps.

Functions that build the pictures, and callbacks that write them every N iterations (and when
training ends) into the run directory (``trainer.default_root_dir``) and to the loggers:

- `ReconstructionGrid`: rows of inputs, each above the row of their reconstructions;
- `LatentInterpolation`: decoded points on the path between the codes of two images, linear or
  spherical (slerp, White 2016, arXiv:1609.04468), as a grid (one pair per row) and an animated GIF;
- `LatentMap`: with ``latent_dim == 2`` the decoded grid of z over the Gaussian quantiles of the
  latent distribution (Kingma & Welling 2013, arXiv:1312.6114, Fig. 4); with any other size, a
  scatter plot of the first two principal components of the codes of held-out images, coloured by
  label (no error: the grid needs two dimensions, the projection works for all).

They use only the autoencoder view API of `ConvAutoEncoderBase` (``encode``, ``decode``,
``reconstruct``, ``latent_dim``, ``latent_gaussian``). Codes are deterministic (a VAE's posterior
mean), so the ends of an interpolation decode exactly to the reconstructions of its two images.

Images are taken from the datamodule's ``val`` (or ``test``) loader once and kept, so every
picture of a run shows the same images; they are drawn in eval mode under ``no_grad`` and never
advance the training RNG. Files: ``<run>/<dirname>/iter_XXXXXXXX.png`` (and ``.gif``); logger keys
start with ``samples/`` so W&B plots them against ``iteration``. Only rank 0 writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor

from genmodels.images import save_png, uint8_grid

__all__ = [
    "ReconstructionGrid",
    "LatentInterpolation",
    "LatentMap",
    "reconstruction_grid",
    "interpolate",
    "interpolation_frames",
    "interpolation_grid",
    "save_gif",
    "latent_map",
    "decoded_latent_grid",
    "latent_projection",
    "pca_2d",
]

# Ten distinguishable colours (matplotlib's tab10), one per label; unlabelled points are black.
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


# ---------------------------------------------------------------------------------------------
# Pictures.


@torch.no_grad()
def reconstruction_grid(model: Any, images: Tensor, labels: Optional[Tensor] = None, nrow: int = 8) -> Tensor:
    """uint8 (3, H, W) grid: each row of ``nrow`` inputs is followed by the row of their reconstructions."""
    outputs = model.reconstruct(images, labels)
    rows = []
    for start in range(0, len(images), nrow):
        rows += [images[start : start + nrow], outputs[start : start + nrow]]
    # Pad the last pair of rows so every input stays above its own reconstruction.
    width = min(nrow, len(images))
    padded = [torch.cat([r, r.new_full((width - len(r), *r.shape[1:]), -1.0)]) if len(r) < width else r for r in rows]
    return uint8_grid(torch.cat(padded), nrow=width)


def interpolate(z_a: Tensor, z_b: Tensor, steps: int, method: Literal["linear", "spherical"] = "linear") -> Tensor:
    """Points on the path from each row of ``z_a`` to the same row of ``z_b``: (n, steps, d).

    ``spherical`` is slerp on the vectors as given (angle from their directions); it falls back to
    the straight line for (anti)parallel codes. The first and last points are ``z_a`` and ``z_b``.
    """
    if steps < 2:
        raise ValueError(f"an interpolation needs steps >= 2 (both ends), got {steps}")
    if method not in ("linear", "spherical"):
        raise ValueError(f"interpolation method must be 'linear' or 'spherical', got {method!r}")
    t = torch.linspace(0, 1, steps, device=z_a.device, dtype=z_a.dtype).view(1, -1, 1)
    a, b = z_a.unsqueeze(1), z_b.unsqueeze(1)
    path = torch.lerp(a, b, t)
    if method == "spherical":
        cosine = torch.nn.functional.cosine_similarity(z_a, z_b, dim=1).clamp(-1, 1)
        omega = torch.arccos(cosine).view(-1, 1, 1)
        sin_omega = torch.sin(omega)
        slerp = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega.clamp_min(1e-7)
        path = torch.where(sin_omega > 1e-4, slerp, path)
    # Exact ends, whatever the rounding of sin(omega) / sin(omega).
    path[:, 0], path[:, -1] = z_a, z_b
    return path


@torch.no_grad()
def interpolation_frames(
    model: Any,
    images_a: Tensor,
    images_b: Tensor,
    steps: int = 10,
    method: Literal["linear", "spherical"] = "linear",
    labels: Optional[Tensor] = None,
) -> Tensor:
    """Decoded interpolations between the codes of ``images_a`` and ``images_b``: (n, steps, C, H, W).

    A conditional model decodes the whole path with ``labels`` (those of ``images_a``).
    """
    z = interpolate(model.encode(images_a, labels), model.encode(images_b, labels), steps, method)
    n = len(images_a)
    flat_labels = None if labels is None else labels.repeat_interleave(steps)
    decoded = model.decode(z.flatten(0, 1), flat_labels)
    return decoded.view(n, steps, *decoded.shape[1:])


def interpolation_grid(frames: Tensor) -> Tensor:
    """uint8 (3, H, W) grid of (n, steps, C, H, W) frames: one pair per row, left to right."""
    return uint8_grid(frames.flatten(0, 1), nrow=frames.shape[1])


def save_gif(frames: Tensor, path: str | os.PathLike, duration_ms: int = 120, bounce: bool = True) -> Path:
    """Write (n, steps, C, H, W) frames as an animated GIF: frame t shows every pair at step t.

    ``bounce`` plays the path forth and back so the loop has no jump. Written atomically.
    """
    order = list(range(frames.shape[1]))
    if bounce:
        order += order[-2:0:-1]
    pictures = [Image.fromarray(uint8_grid(frames[:, t], nrow=1).permute(1, 2, 0).numpy()) for t in order]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    os.replace(tmp, path)
    return path


@torch.no_grad()
def decoded_latent_grid(model: Any, grid_size: int = 16, label: int = 0) -> Tensor:
    """uint8 grid of the images decoded on a grid_size x grid_size grid of a 2-D latent space.

    Coordinates are Gaussian quantiles of evenly spaced probabilities (Kingma & Welling, Fig. 4),
    scaled by the model's latent mean and std; the vertical axis grows upwards.
    """
    if model.latent_dim != 2:
        raise ValueError(f"a decoded latent grid needs latent_dim == 2, got {model.latent_dim}; use latent_projection")
    mean, std = (t.float() for t in model.latent_gaussian())
    probabilities = (torch.arange(grid_size, dtype=torch.float32, device=mean.device) + 0.5) / grid_size
    quantiles = torch.special.ndtri(probabilities)
    x = quantiles.repeat(grid_size)  # left to right within a row
    y = quantiles.flip(0).repeat_interleave(grid_size)  # top row = largest z_2
    z = mean + std * torch.stack([x, y], dim=1)
    labels = torch.full((len(z),), label, device=z.device) if model.num_classes else None
    return uint8_grid(model.decode(z, labels), nrow=grid_size, padding=0)


def pca_2d(codes: Tensor) -> tuple[Tensor, Tensor]:
    """Projection of (n, d) codes on their first two principal axes, and the variance share of each.

    A 1-D code gives a zero second coordinate.
    """
    codes = codes.double()
    centred = codes - codes.mean(0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = centred @ vh[:2].T
    total = singular.pow(2).sum().clamp_min(1e-12)
    share = singular[:2].pow(2) / total
    if projection.shape[1] < 2:
        projection = torch.cat([projection, projection.new_zeros(len(projection), 2 - projection.shape[1])], 1)
        share = torch.cat([share, share.new_zeros(2 - len(share))])
    return projection.float(), share.float()


@torch.no_grad()
def latent_projection(model: Any, images: Tensor, labels: Optional[Tensor] = None, size: int = 320, batch_size: int = 256) -> Tensor:
    """uint8 (3, H, W) scatter plot of the codes of ``images`` on their first two principal axes.

    Points are coloured by ``labels`` (palette of 10, repeated); labels < 0 or None are black.
    """
    conditional = getattr(model, "num_classes", 0) > 0
    codes = torch.cat([
        model.encode(images[i : i + batch_size], labels[i : i + batch_size] if conditional else None)
        for i in range(0, len(images), batch_size)
    ])
    points, share = pca_2d(codes)
    return _scatter_plot(points, labels, size, f"PCA of {len(points)} codes ({100 * share.sum():.0f}% of variance)")


@torch.no_grad()
def latent_map(
    model: Any, images: Optional[Tensor] = None, labels: Optional[Tensor] = None, grid_size: int = 16
) -> tuple[str, Tensor]:
    """``("grid", decoded grid)`` when ``latent_dim == 2``, else ``("pca", projection of the codes of images)``.

    Raises:
        ValueError: latent_dim != 2 and no images to project.
    """
    if model.latent_dim == 2:
        return "grid", decoded_latent_grid(model, grid_size)
    if images is None or len(images) < 2:
        raise ValueError(f"latent_dim is {model.latent_dim}, so the latent map is a PCA projection: pass >= 2 images")
    return "pca", latent_projection(model, images, labels)


def _scatter_plot(points: Tensor, labels: Optional[Tensor], size: int, title: str) -> Tensor:
    """Draw a coloured scatter plot with PIL (no plotting dependency) as uint8 (3, H, W)."""
    legend_width, top, margin = 60, 18, 10
    canvas = Image.new("RGB", (size + legend_width, size + top), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((margin, 3), title, fill=(0, 0, 0))
    low, high = points.min(0).values, points.max(0).values
    span = (high - low).clamp_min(1e-9)
    pixels = (points - low) / span * (size - 2 * margin) + margin
    label_list = [-1] * len(points) if labels is None else labels.view(-1).tolist()
    for (x, y), label in zip(pixels.tolist(), label_list):
        colour = PALETTE[label % len(PALETTE)] if label >= 0 else (0, 0, 0)
        y = size - y + top  # the second axis grows upwards
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    for row, label in enumerate(sorted({int(v) for v in label_list})[:20]):
        colour = PALETTE[label % len(PALETTE)] if label >= 0 else (0, 0, 0)
        y = top + 6 + 14 * row
        draw.rectangle((size + 6, y, size + 16, y + 10), fill=colour)
        draw.text((size + 22, y - 1), "none" if label < 0 else str(label), fill=(0, 0, 0))
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# Callbacks.


class _AutoencoderView(pl.Callback):
    """Writes one view every ``every_n_iterations`` and at the end of training (rank 0 only).

    Args:
        every_n_iterations: interval in model iterations; 0 writes only when training ends.
        num_images: held-out images the view uses (taken once, then fixed).
        split: ``val`` or ``test``: the datamodule loader the images come from.
        dirname: folder under the run directory.
        log_key: key of the picture in the loggers.
    """

    def __init__(self, every_n_iterations: int, num_images: int, split: str, dirname: str, log_key: str) -> None:
        if every_n_iterations < 0:
            raise ValueError(f"every_n_iterations must be >= 0, got {every_n_iterations}")
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        self.every_n_iterations, self.num_images, self.split = every_n_iterations, num_images, split
        self.dirname, self.log_key = dirname, log_key
        self.last_iteration: Optional[int] = None
        self._images: Optional[tuple[Tensor, Optional[Tensor]]] = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self.every_n_iterations
        if n and pl_module.iteration % n == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.last_iteration != pl_module.iteration:
            self.write(trainer, pl_module)

    def write(self, trainer: pl.Trainer, pl_module: Any) -> Optional[Path]:
        """Render the view in eval mode, save it and log it; returns the PNG path (None off rank 0)."""
        if not trainer.is_global_zero:
            return None
        was_training = pl_module.training
        pl_module.eval()
        try:
            images, labels = self.images(trainer, pl_module)
            with torch.no_grad():
                grid = self.render(pl_module, images, labels, self.path(trainer, pl_module, ""))
        finally:
            pl_module.train(was_training)
        path = save_png(grid, self.path(trainer, pl_module, ".png"))
        for logger in trainer.loggers:
            log_image(logger, self.log_key, grid, pl_module.iteration)
        self.last_iteration = pl_module.iteration
        return path

    def render(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        """The uint8 (3, H, W) picture; ``stem`` (no suffix) names any extra file."""
        raise NotImplementedError

    def path(self, trainer: pl.Trainer, pl_module: Any, suffix: str) -> Path:
        return Path(trainer.default_root_dir) / self.dirname / f"iter_{pl_module.iteration:08d}{suffix}"

    def images(self, trainer: pl.Trainer, pl_module: Any) -> tuple[Tensor, Optional[Tensor]]:
        """The fixed held-out images in [-1, 1] and their labels, on the model's device."""
        if self._images is None:
            self._images = take_images(trainer, self.split, self.num_images)
        images, labels = self._images
        labels = None if labels is None else labels.to(pl_module.device)
        return _to_model_range(images).to(pl_module.device), labels


class ReconstructionGrid(_AutoencoderView):
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

    def render(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        return reconstruction_grid(model, images, _labels_for(model, labels), self.nrow)


class LatentInterpolation(_AutoencoderView):
    """Decoded paths between the codes of pairs of held-out images: a PNG grid and an animated GIF.

    Args:
        every_n_iterations: interval in iterations (0: only when training ends).
        num_pairs: pairs of images (rows); image i is paired with image i + num_pairs.
        steps: points per path, both ends included.
        method: ``linear`` or ``spherical`` (slerp).
        gif: also write ``iter_XXXXXXXX.gif``.
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

    def render(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        if len(images) < 2:
            raise ValueError("LatentInterpolation needs at least 2 held-out images")
        half = len(images) // 2
        labels = _labels_for(model, labels)
        frames = interpolation_frames(
            model, images[:half], images[half : 2 * half], self.steps, self.method, None if labels is None else labels[:half]
        )
        if self.gif:
            save_gif(frames, stem.with_suffix(".gif"))
        return interpolation_grid(frames)


class LatentMap(_AutoencoderView):
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

    def images(self, trainer: pl.Trainer, pl_module: Any) -> tuple[Tensor, Optional[Tensor]]:
        if pl_module.latent_dim == 2:  # the decoded grid needs no data
            return torch.empty(0), None
        return super().images(trainer, pl_module)

    def render(self, model: Any, images: Tensor, labels: Optional[Tensor], stem: Path) -> Tensor:
        self.last_kind, picture = latent_map(model, images if len(images) else None, labels, self.grid_size)
        return picture


# ---------------------------------------------------------------------------------------------
# Helpers.


def take_images(trainer: pl.Trainer, split: str, n: int) -> tuple[Tensor, Optional[Tensor]]:
    """The first ``n`` images (as loaded, on the CPU) and labels of the datamodule's ``split`` loader.

    Falls back to the trainer's validation loaders when there is no datamodule.
    """
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is not None and hasattr(datamodule, f"{split}_dataloader"):
        loaders: Any = getattr(datamodule, f"{split}_dataloader")()
    else:
        loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    if loader is None:
        raise ValueError(f"no {split} data to draw the view from: give the trainer a datamodule or val loader")
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


def log_image(logger: Any, key: str, picture: Tensor, iteration: int) -> None:
    """Log a uint8 (3, H, W) picture as is (never min-max rescaled) against ``iteration``."""
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({key: wandb.Image(picture.permute(1, 2, 0).numpy(), caption=f"iteration {iteration}"), "iteration": iteration})
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, picture, global_step=iteration)


def _to_model_range(images: Tensor) -> Tensor:
    # Loaders yield uint8 (the datamodule converts on the device in on_after_batch_transfer).
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()


def _labels_for(model: Any, labels: Optional[Tensor]) -> Optional[Tensor]:
    """Labels only for a conditional model (an unconditional one must not be handed -1 labels)."""
    return labels if getattr(model, "num_classes", 0) > 0 else None
