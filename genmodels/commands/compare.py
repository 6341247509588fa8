"""``genmodels compare RUN_DIR...``: a table and a plot of several runs, from local files only (`genmodels.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "compare"
HELP = "table and curves of several run directories, from local W&B/CSV files"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=(
        "Print one row per run (last iteration, last losses, best val/fid_* and when) and plot metrics against "
        "iteration, from the runs' local W&B or CSV files."))
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories (trainer.default_root_dir)")
    c.option(p, "--keys", default="train/loss_d,train/loss_g",
             help="metrics to plot (comma-separated; every val/fid_* metric found is added)")
    c.add_out(p, "PNG of the curves (default compare.png)", required=False, default="compare.png")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    from genmodels.compare import format_value, plot_curves, summarize
    from genmodels.runs import run_history

    for run_dir in args.runs:
        if not run_dir.is_dir():
            raise c.UserError(f"{run_dir} is not a run directory; pass folders written by `genmodels fit`")
    out = c.check_output(args.out, inputs=args.runs, overwrite=args.overwrite, suffixes=(".png",))
    runs = {str(run): run_history(run) for run in args.runs}
    summaries = [summarize(Path(name), rows) for name, rows in runs.items()]
    columns = ["run", "iteration", "train/loss_d", "train/loss_g"]
    columns += sorted({k for s in summaries for k in s if k.startswith(("val/fid", "val/kid"))})
    print("\t".join(columns))
    for summary in summaries:
        print("\t".join(format_value(summary.get(column)) for column in columns))
    found = sorted({k for rows in runs.values() for row in rows for k in row if k.startswith("val/fid")})
    keys = [k for k in args.keys.split(",") if k] + [k for k in found if k not in args.keys]
    print(f"plot: {plot_curves(runs, keys, out)}")
    return {"summaries": summaries, "plot": out}
