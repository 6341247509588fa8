"""Image conversions shared by callbacks, the CLI and apps.

The mapping from model space to pixels is explicit and fixed, [-1, 1] -> [0, 255], never a
per-image min-max normalization (which makes grids from different steps incomparable).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

__all__ = ["to_uint8", "uint8_grid", "save_png"]


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
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
