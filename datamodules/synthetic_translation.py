"""Tiny synthetic translation datasets in the real pix2pix / CycleGAN layouts, for CPU runs and tests.

- ``edges2shapes`` (paired, pix2pix layout): B is a filled shape on white, red for an ellipse,
  blue for a rectangle; A is its black outline. Translating A -> B means filling the outline with
  the colour its shape implies, a small edges -> photo task.
- ``red2blue`` (unpaired, CycleGAN layout): domain A holds red disks, domain B blue squares, at
  unrelated random places; CycleGAN learns disk <-> square with the colour change.

Files are JPEGs (quality 95) as in the real datasets. The content of file k of a split depends
only on (split, k), so tests can recompute it.

Usage::

    python -m datamodules.synthetic_translation data/ edges2shapes   # then train experiments/pix2pix/edges2shapes_cpu.yaml
    python -m datamodules.synthetic_translation data/ red2blue        # experiments/cyclegan/red2blue_cpu.yaml
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["shape_pair", "disk_or_square", "write_edges2shapes", "write_red2blue"]


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def shape_pair(split: str, index: int, size: int = 64) -> tuple[Image.Image, Image.Image]:
    """(outline A, filled B) of pair ``index`` of ``split``, both ``size`` x ``size`` RGB."""
    rng = _rng("edges2shapes", split, index)
    ellipse = bool(index % 2)
    x0, y0 = (int(v) for v in rng.integers(2, size // 2, size=2))
    x1, y1 = (int(v) for v in rng.integers(size // 2 + 4, size - 2, size=2))
    a, b = Image.new("RGB", (size, size), "white"), Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(a).ellipse if ellipse else ImageDraw.Draw(a).rectangle
    draw((x0, y0, x1, y1), outline="black", width=2)
    fill = (220, 30, 30) if ellipse else (30, 30, 220)
    draw = ImageDraw.Draw(b).ellipse if ellipse else ImageDraw.Draw(b).rectangle
    draw((x0, y0, x1, y1), fill=fill)
    return a, b


def disk_or_square(domain: str, split: str, index: int, size: int = 64) -> Image.Image:
    """Image ``index`` of domain ``A`` (a red disk) or ``B`` (a blue square)."""
    rng = _rng("red2blue", domain, split, index)
    radius = int(rng.integers(size // 8, size // 4))
    cx, cy = (int(v) for v in rng.integers(radius + 1, size - radius - 1, size=2))
    image = Image.new("RGB", (size, size), "white")
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if domain == "A":
        ImageDraw.Draw(image).ellipse(box, fill=(220, 30, 30))
    else:
        ImageDraw.Draw(image).rectangle(box, fill=(30, 30, 220))
    return image


def write_edges2shapes(root: Path, counts: dict[str, int] | None = None, size: int = 64, name: str = "edges2shapes") -> Path:
    """``root/<name>/{train,val,test}/k.jpg`` with A | B side by side; returns ``root/<name>``."""
    counts = counts or {"train": 8, "val": 4, "test": 4}
    folder = Path(root) / name
    for split, count in counts.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            a, b = shape_pair(split, k, size)
            pair = Image.new("RGB", (2 * size, size))
            pair.paste(a, (0, 0))
            pair.paste(b, (size, 0))
            pair.save(folder / split / f"{k + 1}.jpg", format="JPEG", quality=95)
    return folder


def write_red2blue(root: Path, counts: dict[str, int] | None = None, size: int = 64, name: str = "red2blue") -> Path:
    """``root/<name>/{trainA,trainB,testA,testB}/k.jpg``; returns ``root/<name>``."""
    counts = counts or {"trainA": 8, "trainB": 6, "testA": 4, "testB": 4}
    folder = Path(root) / name
    for split_domain, count in counts.items():
        split, domain = split_domain[:-1], split_domain[-1]
        (folder / split_domain).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            disk_or_square(domain, split, k, size).save(folder / split_domain / f"{k + 1}_{domain}.jpg", format="JPEG", quality=95)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("edges2shapes", "red2blue"):
        raise SystemExit("usage: python -m datamodules.synthetic_translation DATA_DIR edges2shapes|red2blue")
    writer = write_edges2shapes if sys.argv[2] == "edges2shapes" else write_red2blue
    counts = {"train": 200, "val": 20, "test": 20} if sys.argv[2] == "edges2shapes" else {"trainA": 200, "trainB": 200, "testA": 20, "testB": 20}
    print(writer(Path(sys.argv[1]), counts))
