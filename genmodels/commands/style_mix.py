"""``genmodels style-mix``: style-mixing grid of a style-based generator (StyleGAN Fig. 3, `genmodels.apps.style`).

Example::

    genmodels style-mix --ckpt last.ckpt --rows 0 1 2 --cols 10 11 12 13 --styles coarse --out mix.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.atomic import atomic_write
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
    out = c.check_output(args.out, inputs=[args.ckpt], overwrite=args.overwrite, suffixes=(".png",))
    model = c.load_checkpoint_model(args.ckpt, args.device)
    cells = (len(args.rows) + 1) * (len(args.cols) + 1)
    c.check_memory(c.image_bytes(model.image_shape, cells, 8), f"--rows x --cols ({cells} images of {c.shape_text(model.image_shape)})",
                   "give fewer --rows or --cols seeds", args.max_memory_gb)
    from genmodels.apps.generation import grid_png
    from genmodels.apps.style import style_mixing_grid

    images = style_mixing_grid(model, args.rows, args.cols, args.styles, args.truncation)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write(grid_png(images, nrow=len(args.cols) + 1)))
    print(f"{args.styles} styles of seeds {args.cols} into seeds {args.rows} -> {out}")
    return out
