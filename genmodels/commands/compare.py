"""``genmodels compare RUN...``: a table and a plot of several runs (`genmodels.compare`).

A RUN is a run directory (its offline or synced W&B files, else CSV logs) or, with W&B
credentials, a W&B run path ``entity/project/run_id`` read through the public API.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "compare"
HELP = "table and curves of several runs: run directories (local W&B/CSV files) or W&B run paths (public API)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=(
        "Print W&B's runs table for these runs (the last iteration and the last value of each metric; the best "
        "val/fid_* and when) and plot the metrics against iteration. Works for every family: --keys picks the "
        "columns and plots (e.g. train/loss_g or val/bits_per_dim)."))
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (trainer.default_root_dir), or W&B run "
                   "paths entity/project/run_id (read through the W&B API; needs credentials)")
    c.option(p, "--keys", default=None,
             help="metrics for the columns and the plots, comma-separated (default: every metric the runs log; "
                  "the plots then show train/loss_* or, failing those, the first four)")
    c.add_out(p, "PNG of the curves (default compare.png)", required=False, default="compare.png")
    return p


def _histories(runs: list[str], api: Any = None) -> dict[str, list[dict]]:
    """Each RUN's rows: local files for a directory, the W&B public API for an entity/project/id path."""
    from genmodels.compare import api_history
    from genmodels.loggers import has_wandb_credentials
    from genmodels.runs import run_history

    histories = {}
    for name in runs:
        if Path(name).is_dir():
            histories[name] = run_history(Path(name))
        elif name.count("/") == 2 and (api is not None or has_wandb_credentials()):
            histories[name] = api_history(name, api)
        else:
            raise c.UserError(f"{name} is not a run directory{'' if name.count('/') == 2 else ' or a W&B run path'}; "
                              "pass folders written by `genmodels fit`, or entity/project/run_id with W&B "
                              "credentials (`wandb login`)")
    return histories


def run(args: argparse.Namespace, api: Any = None) -> dict[str, Any]:
    """``api``: a ``wandb.Api`` stand-in (tests); by default one is made when a RUN is a W&B path."""
    from genmodels.compare import format_value, plot_curves, scalar_keys, summarize

    out = c.check_output(args.out, inputs=[Path(r) for r in args.runs if Path(r).exists()], overwrite=args.overwrite,
                         suffixes=(".png",))
    runs = _histories(args.runs, api)
    every = sorted({k for rows in runs.values() for k in scalar_keys(rows)})
    keys = [k for k in args.keys.split(",") if k] if args.keys else every
    summaries = [summarize(Path(name), rows, keys) for name, rows in runs.items()]
    columns = ["run", "iteration", *keys]
    columns += sorted({k for s in summaries for k in s if " best" in k and k.split(" ")[0] in keys})
    print("\t".join(columns))
    for summary in summaries:
        print("\t".join(format_value(summary.get(column)) for column in columns))
    plotted = keys if args.keys else ([k for k in every if k.startswith("train/loss")] or every[:4])
    print(f"plot: {plot_curves(runs, plotted, out)}")
    return {"summaries": summaries, "columns": columns, "plot": out}
