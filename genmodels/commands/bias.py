"""``genmodels bias``: which classifier scores move together when one is edited (`genmodels.apps.bias`).

Example::

    genmodels bias --ckpt G.ckpt --classifier attributes-celeba.pt --out bias/ --targets Smiling,Male --steps 8

writes correlation.csv, correlation.png, change.csv and top_changes.csv into ``--out``.
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _edit
from genmodels.commands import common as c

NAME = "bias"
HELP = "bias probe: correlations between classifier scores along latent edits"
_FILES = ("correlation.csv", "change.csv", "top_changes.csv", "correlation.png")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Which scores move together when one is edited.")
    c.option(p, "--targets", default=None, help="comma-separated classes/attributes to edit (default: all)")
    c.option(p, "--top", type=c.positive_int, default=5, help="other attributes listed per target (default 5)")
    c.add_out(p, "output folder (correlation.csv/.png, change.csv, top_changes.csv)", required=False, default="bias")
    _edit.add_edit_arguments(p)
    return p


def run(args: argparse.Namespace) -> Any:
    from genmodels.apps.bias import probe_bias, write_report

    out = c.check_output_dir(args.out, _FILES, inputs=[args.ckpt, args.classifier], overwrite=args.overwrite)
    _, scorer, decode, z = _edit.load_edit_setup(args)
    targets = None if args.targets is None else [scorer.index(t.strip()) for t in args.targets.split(",") if t.strip()]
    report = probe_bias(decode, scorer, z, targets, args.steps, args.step_size, args.penalty)
    paths = write_report(report, out, args.top)
    print(f"{'edited':>16s} {'attribute':>16s} {'change':>9s} {'corr':>6s}")
    for target, other, change, correlation in report.top_changes(args.top):
        print(f"{target:>16s} {other:>16s} {change:9.3f} {correlation:6.2f}")
    print(f"correlation matrix: {paths['correlation']} and {paths['heatmap']}")
    return report
