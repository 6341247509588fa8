"""Image conversions and figures shared by callbacks, the CLI and apps.

The mapping from model space to pixels is explicit and fixed, [-1, 1] -> [0, 255], never a
per-image min-max normalization (which makes grids from different steps incomparable).

Animations and their still versions share one layout: `frame_grids` lays out frames of shape
(steps, n, C, H, W), one grid per step; `save_gif` writes those grids as a GIF and `path_grid`
lays the whole path out as one grid (one path per row, steps left to right).

Autoencoder figures (`reconstruction_grid`, `interpolation_frames`, `latent_map`) use only the
`genmodels.protocols.Autoencoder` methods: ``encode``, ``decode``, ``reconstruct``, ``latent_dim``,
``latent_gaussian`` and ``num_classes``. Interpolations may be linear or spherical (slerp, White
2016, arXiv:1609.04468); a 2-D latent map is the decoded grid over Gaussian quantiles (Kingma &
Welling 2013, arXiv:1312.6114, Fig. 4), any other size a PCA scatter plot of held-out codes.

>>> grid = uint8_grid(torch.zeros(4, 1, 8, 8), nrow=2)
>>> grid.dtype, tuple(grid.shape), int(grid[0, 5, 5])  # 0 is mid-grey, on a 2 px black border
(torch.uint8, (3, 22, 22), 128)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from genmodels.atomic import atomic_write
from genmodels.errors import InvalidValue

__all__ = [
    "to_uint8",
    "uint8_grid",
    "save_png",
    "frame_grids",
    "path_grid",
    "save_gif",
    "captioned_grid",
    "reconstruction_grid",
    "interpolate",
    "interpolation_frames",
    "decoded_latent_grid",
    "latent_projection",
    "latent_map",
    "pca_2d",
    "PALETTE",
    "IMAGE_EXTENSIONS",
    "ignored_entry",
    "find_images",
]

#: Image files read from folders (datasets, `genmodels translate` inputs), any case.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
#: Folders that archives and file systems leave behind; never data.
IGNORED_DIRS = ("__MACOSX", "lost+found")


def ignored_entry(name: str) -> bool:
    """Hidden entries (``.DS_Store``, ``._x.jpg``) and archive debris (``__MACOSX``) are not data."""
    return name.startswith(".") or name in IGNORED_DIRS


def find_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, any case of the extensions), sorted; hidden entries
    (``.DS_Store``, ``._x.jpg``) and ``__MACOSX`` folders skipped."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).parts
        if path.suffix.lower() in IMAGE_EXTENSIONS and not any(ignored_entry(p) for p in relative) and path.is_file():
            found.append(path)
    return sorted(found)


def to_uint8(images: Tensor) -> Tensor:
    """(N, C, H, W) floats in [-1, 1] -> uint8 in [0, 255] via round((x + 1) * 127.5)."""
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def uint8_grid(images: Tensor, nrow: Optional[int] = None, padding: int = 2) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> one uint8 (3, H', W') grid; ``nrow`` defaults to a square."""
    pixels = to_uint8(images).cpu()
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    nrow = nrow or max(1, math.ceil(math.sqrt(pixels.shape[0])))
    return make_grid(pixels, nrow=nrow, padding=padding, pad_value=0)


def save_png(grid: Tensor, path: Union[str, os.PathLike]) -> Path:
    """Write a uint8 (3, H, W) grid as PNG atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(grid.permute(1, 2, 0).numpy())
    return atomic_write(path, lambda f: picture.save(f, format="PNG"))


def frame_grids(frames: Tensor, nrow: Optional[int] = None, padding: int = 2) -> list[Tensor]:
    """Frames (steps, n, C, H, W) in [-1, 1] -> one uint8 (3, H', W') grid per step, all laid out alike.

    >>> [tuple(g.shape) for g in frame_grids(torch.zeros(3, 2, 1, 4, 4), nrow=1)]
    [(3, 14, 8), (3, 14, 8), (3, 14, 8)]
    """
    return [uint8_grid(frame, nrow=nrow or max(1, math.ceil(math.sqrt(frames.shape[1]))), padding=padding) for frame in frames]


def path_grid(frames: Tensor, padding: int = 2) -> Tensor:
    """Frames (steps, n, C, H, W) as one still grid: path ``i`` is row ``i``, steps left to right.

    >>> tuple(path_grid(torch.zeros(5, 2, 1, 4, 4)).shape)  # 2 rows of 5 steps
    (3, 14, 32)
    """
    steps = frames.shape[0]
    return frame_grids(frames.transpose(0, 1).reshape(1, -1, *frames.shape[2:]), nrow=steps, padding=padding)[0]


def save_gif(
    frames: Tensor, path: Union[str, os.PathLike], nrow: Optional[int] = None, duration_ms: int = 100, bounce: bool = False
) -> Path:
    """Frames (steps, n, C, H, W) in [-1, 1] -> a looping GIF whose frame t is the grid of step t.

    ``nrow``: paths per grid row (default a square). ``bounce`` plays the path forth and back so
    the loop has no jump. Written atomically (temp file + rename).
    """
    grids = frame_grids(frames, nrow)
    if bounce:
        grids += grids[-2:0:-1]
    pictures = [Image.fromarray(grid.permute(1, 2, 0).numpy()) for grid in grids]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:],
                                                         duration=duration_ms, loop=0))


_TEXT_HEIGHT = 12


def captioned_grid(images: Tensor, captions: Sequence[str], per_caption: int) -> Image.Image:
    """Rows of ``per_caption`` images in [-1, 1], each row headed by its caption (black text on white)."""
    rows = []
    for k, caption in enumerate(captions):
        grid = uint8_grid(images[k * per_caption : (k + 1) * per_caption], nrow=per_caption).permute(1, 2, 0).numpy()
        header = Image.new("RGB", (grid.shape[1], _TEXT_HEIGHT), (255, 255, 255))
        ImageDraw.Draw(header).text((2, 0), caption, fill=(0, 0, 0))
        rows += [np.asarray(header), grid]
    return Image.fromarray(np.concatenate(rows, axis=0))


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
        raise InvalidValue(f"an interpolation needs steps >= 2 (both ends), got {steps}")
    if method not in ("linear", "spherical"):
        raise InvalidValue(f"interpolation method must be 'linear' or 'spherical', got {method!r}")
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
    """Decoded interpolations between the codes of ``images_a`` and ``images_b``: (steps, n, C, H, W).

    A conditional model decodes the whole path with ``labels`` (those of ``images_a``).
    """
    z = interpolate(model.encode(images_a, labels), model.encode(images_b, labels), steps, method)
    n = len(images_a)
    flat_labels = None if labels is None else labels.repeat_interleave(steps)
    decoded = model.decode(z.flatten(0, 1), flat_labels)
    return decoded.view(n, steps, *decoded.shape[1:]).transpose(0, 1)


@torch.no_grad()
def decoded_latent_grid(model: Any, grid_size: int = 16, label: int = 0) -> Tensor:
    """uint8 grid of the images decoded on a grid_size x grid_size grid of a 2-D latent space.

    Coordinates are Gaussian quantiles of evenly spaced probabilities (Kingma & Welling, Fig. 4),
    scaled by the model's latent mean and std; the vertical axis grows upwards.
    """
    if model.latent_dim != 2:
        raise InvalidValue(f"a decoded latent grid needs latent_dim == 2, got {model.latent_dim}; use latent_projection")
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
    conditional = model.num_classes > 0
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
        raise InvalidValue(f"latent_dim is {model.latent_dim}, so the latent map is a PCA projection: pass >= 2 images")
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
