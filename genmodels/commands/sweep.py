"""``genmodels sweep FILE``: run a W&B sweep file locally, or as a SLURM array, without the W&B service (`genmodels.sweep`)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "sweep"
HELP = "expand a W&B sweep file into genmodels fit runs: run them, print them, or write a SLURM array"
MAX_RUNS = 10_000


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=(
        "Expand a W&B sweep file (grid: Cartesian product; random: --count seeded draws) into `genmodels fit` runs, "
        "each in its own directory under --root; run them one after another, print them (--dry-run), or write a "
        "SLURM array script."))
    p.add_argument("file", type=Path, metavar="FILE", help="sweep YAML (W&B sweep format)")
    c.option(p, "--root", type=Path, default=None, metavar="DIR", help="parent of the run directories (default runs/sweeps/<file>)")
    c.option(p, "--count", type=c.positive_int, default=10, help=f"runs of a random sweep (default 10, at most {MAX_RUNS})")
    c.add_seed(p, "seed of a random sweep's draws")
    c.option(p, "--dry-run", action="store_true", help="print the commands only")
    c.option(p, "--slurm-array", type=Path, default=None, metavar="PATH", help="write a SLURM array script instead of running")
    c.add_overwrite(p)
    c.option(p, "--extra", default="", help="arguments appended to every run (e.g. '--max_iterations 100')")
    return p


def run(args: argparse.Namespace) -> list[list[str]]:
    from genmodels.sweep import expand, fit_args, grid_size, load_sweep, write_slurm_array

    if not args.file.is_file():
        raise c.UserError(f"sweep file not found: {args.file}")
    if args.count > MAX_RUNS:
        raise c.UserError(f"--count {args.count} is over {MAX_RUNS} runs; lower --count")
    if args.slurm_array is not None:
        c.check_output(args.slurm_array, inputs=[args.file], overwrite=args.overwrite, flag="--slurm-array")
    spec = load_sweep(args.file)
    root = args.root or Path("runs/sweeps") / args.file.stem
    size = grid_size(spec, args.count)  # before expanding: a 12 x 10 grid is 10^12 runs
    if size > MAX_RUNS:
        raise c.UserError(f"{args.file} expands to {size} runs, over {MAX_RUNS}; give fewer values per parameter")
    combinations = expand(spec, args.count, args.seed)
    runs = [fit_args(spec, combo, root / f"{i:03d}") + shlex.split(args.extra) for i, combo in enumerate(combinations)]
    if args.slurm_array:
        print(f"wrote {write_slurm_array(runs, args.slurm_array)} ({len(runs)} tasks)")
        return runs
    for i, arguments in enumerate(runs):
        print(f"[{i + 1}/{len(runs)}] genmodels {shlex.join(arguments)}")
        if not args.dry_run:
            from genmodels.commands import fit  # the command itself, not the dispatcher above this one

            fit.run_argv(arguments[1:] + ["--ckpt_path", "last"])  # re-running a sweep resumes unfinished runs
    return runs
