"""``genmodels truncation-grid``: one row per seed, one column per truncation psi (StyleGAN Fig. 8).

Example::

    genmodels truncation-grid --ckpt last.ckpt --seeds 0 1 2 3 --psi -1 -0.5 0 0.5 0.7 1 --out trunc.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import _grid
from genmodels.commands import common as c

NAME = "truncation-grid"
HELP = "truncation sweep grid of a StyleGAN/StyleGAN2 checkpoint (rows: seeds, columns: psi)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Truncation sweep grid (StyleGAN Fig. 8).")
    c.add_generation_options(p)
    c.option(p, "--seeds", type=c.seed, nargs="+", default=[0, 1, 2, 3], metavar="SEED", help="one row per seed (default 0 1 2 3)")
    c.option(p, "--psi", type=float, nargs="+", default=[-1.0, -0.5, 0.0, 0.5, 0.7, 1.0], metavar="PSI",
             help="truncation values, one column each (default -1 -0.5 0 0.5 0.7 1)")
    c.add_out(p, "grid .png")
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> Path:
    from genmodels.apps.style import truncation_grid

    out = _grid.write_grid(args, len(args.seeds) * len(args.psi), "--seeds x --psi", "give fewer --seeds or --psi values",
                           len(args.psi), lambda model: truncation_grid(model, args.seeds, list(args.psi)))
    print(f"seeds {args.seeds} x psi {list(args.psi)} -> {out}")
    return out
