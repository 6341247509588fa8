"""The run shared by ``genmodels style-mix`` and ``genmodels truncation-grid``: one PNG grid of a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from genmodels.atomic import atomic_write
from genmodels.commands import common as c


def write_grid(args: argparse.Namespace, cells: int, what: str, fix: str, nrow: int,
               make: Callable[[Any], Any]) -> Path:
    """Check ``--out`` (a .png), load ``--ckpt``, refuse ``cells`` images over ``--max-memory-gb``
    (``what`` names the options that ask for them, ``fix`` says what to give), then write the
    images ``make(model)`` returns as a grid of ``nrow`` columns."""
    out = c.check_output(args.out, inputs=[args.ckpt], overwrite=args.overwrite, suffixes=(".png",))
    model = c.load_checkpoint_model(args.ckpt, args.device)
    c.check_memory(c.image_bytes(model.image_shape, cells, 8), f"{what} ({cells} images of {c.shape_text(model.image_shape)})",
                   fix, args.max_memory_gb)
    from genmodels.apps.generation import grid_png

    images = make(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write(grid_png(images, nrow=nrow)))
    return out
