"""``genmodels style-mix``: style-mixing grid of a style-based generator (StyleGAN Fig. 3, `genmodels.apps.style`).

Example::

    genmodels style-mix --ckpt last.ckpt --rows 0 1 2 --cols 10 11 12 13 --styles coarse --out mix.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import _grid
from genmodels.commands import common as c

NAME = "style-mix"
HELP = "style-mixing grid of a StyleGAN/StyleGAN2 checkpoint (coarse, middle or fine styles)"
MAX_SEEDS = 256  # per axis: a grid is (rows + 1) x (cols + 1) images


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Style-mixing grid (StyleGAN Fig. 3).")
    c.add_generation_options(p)
    c.option(p, "--rows", type=c.seed, nargs="+", default=[0, 1, 2], metavar="SEED",
             help="seeds of the images that keep their other styles (default 0 1 2)")
    c.option(p, "--cols", type=c.seed, nargs="+", default=[10, 11, 12, 13], metavar="SEED",
             help="seeds whose styles are copied (default 10 11 12 13)")
    c.option(p, "--styles", choices=("coarse", "middle", "fine"), default="coarse",
             help="layers taken from the column image (default coarse)")
    c.add_out(p, "grid .png")
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> Path:
    from genmodels.apps.style import style_mixing_grid

    out = _grid.write_grid(args, (len(args.rows) + 1) * (len(args.cols) + 1), "--rows x --cols", "give fewer --rows or --cols seeds",
                           len(args.cols) + 1, lambda model: style_mixing_grid(model, args.rows, args.cols, args.styles, args.truncation))
    print(f"{args.styles} styles of seeds {args.cols} into seeds {args.rows} -> {out}")
    return out
