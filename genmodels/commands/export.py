"""``genmodels export``: write a checkpoint's generator for inference (`genmodels.apps.export`).

Examples::

    genmodels export --ckpt last.ckpt --out generator.pt                  # weights-only, shareable
    genmodels export --ckpt last.ckpt --format program --out generator.pt2
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "export"
HELP = "export a checkpoint's generator: weights-only file (any --ckpt) or torch.export program"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Export a checkpoint's generator for inference.")
    c.add_ckpt(p, "training checkpoint (or an exported weights file)")
    c.add_out(p, "output file (generator.pt for weights, generator.pt2 for program); never the --ckpt file")
    c.option(p, "--format", choices=("weights", "program"), default="weights",
             help="weights: weights-only file for genmodels (default); program: torch.export program z -> images")
    c.add_device(p, "cpu")
    return p


def run(args: argparse.Namespace) -> Path:
    out = c.check_output(args.out, inputs=[args.ckpt], overwrite=args.overwrite)
    model = c.load_checkpoint_model(args.ckpt, args.device)
    from genmodels.apps.export import export_program, export_weights

    if args.format == "weights":
        path = export_weights(model, out)
        print(f"weights-only generator of {type(model).__name__} -> {path} (open with torch.load(weights_only=True), "
              "or pass it as --ckpt to any genmodels command)")
        return path
    path, difference = export_program(model, out)
    print(f"torch.export program of {type(model).__name__} -> {path}; max |exported - eager| = {difference:.3g}")
    return path
