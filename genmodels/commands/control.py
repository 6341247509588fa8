"""``genmodels control``: edit z along a classifier's gradient to raise or lower one score (`genmodels.apps.controllable`).

Example::

    genmodels control --ckpt runs/cgan/digits/checkpoints/last.ckpt --classifier lenet-digits.pt \\
        --target 3 --steps 8 --out grid.png [--penalty 1] [--lower] [--condition 5]

writes ``grid.png`` (one row per sample, one column per step, the start first) and ``grid.csv``
(mean scores per step).
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _edit
from genmodels.commands import common as c

NAME = "control"
HELP = "controllable generation: move z to raise (or lower) a classifier's class or attribute score"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Edit z along a classifier's gradient.")
    c.option(p, "--target", required=True, help="class (index or name) or attribute name to raise")
    c.option(p, "--lower", action="store_true", help="lower the target's score instead")
    c.add_out(p, "grid PNG (one column per step); a .csv of the scores is written next to it", required=False,
              default="control.png")
    _edit.add_edit_arguments(p)
    return p


def run(args: argparse.Namespace) -> Any:
    from genmodels.apps.controllable import edit_latents, write_steps_csv
    from genmodels.images import save_png

    inputs = [args.ckpt, args.classifier]
    out = c.check_output(args.out, inputs=inputs, overwrite=args.overwrite, suffixes=(".png",))
    table_path = c.check_output(out.with_suffix(".csv"), inputs=inputs, overwrite=args.overwrite, flag="--out (.csv)")
    _, scorer, decode, z = _edit.load_edit_setup(args)
    target = scorer.index(args.target)
    edit = edit_latents(decode, scorer, z, target, args.steps, args.step_size, args.lower, args.penalty)
    out = save_png(edit.grid(), out)
    table = write_steps_csv(edit, scorer, table_path)
    probability = scorer.probabilities(edit.scores)[:, :, target].mean(dim=1)
    print(f"target {scorer.names[target]!r}: mean probability {probability[0]:.3f} -> {probability[-1]:.3f} over {args.steps} steps")
    print(f"grid written to {out} (rows: samples, columns: steps)\nscores per step in {table}")
    return edit
