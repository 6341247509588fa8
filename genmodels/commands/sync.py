"""``genmodels sync RUN_DIR``: upload every offline W&B segment of a run, oldest first."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "sync"
HELP = "upload a run's offline W&B data: every launch (resume, test, validate) in order, as one W&B run"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=(
        "Run `wandb sync` on every offline segment of RUN_DIR (one per launch: the first fit, each resume, each "
        "test/validate), oldest first, so that W&B receives them as one run in order. Needs W&B credentials "
        "(`wandb login`)."))
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run directory (trainer.default_root_dir)")
    c.option(p, "--dry-run", action="store_true", help="print the wandb sync commands only")
    return p


def sync_commands(run_dir: Path) -> list[list[str]]:
    """One ``wandb sync SEGMENT`` command per offline segment of ``run_dir``, oldest first."""
    from genmodels.runs import offline_segments

    if not run_dir.is_dir():
        raise c.UserError(f"{run_dir} is not a run directory; pass a folder written by `genmodels fit`")
    segments = offline_segments(run_dir)
    if not segments:
        raise c.UserError(f"{run_dir}/wandb holds no offline runs (offline-run-*); an online run is on W&B already")
    wandb_cli = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    return [[wandb_cli, "sync", str(segment)] for segment in segments]


def run(args: argparse.Namespace) -> list[list[str]]:
    commands = sync_commands(args.run_dir)
    for i, command in enumerate(commands):
        print(f"[{i + 1}/{len(commands)}] wandb sync {command[-1]}", flush=True)
        if not args.dry_run:
            result = subprocess.run(command)
            if result.returncode != 0:
                raise c.UserError(f"wandb sync {command[-1]} failed (exit {result.returncode}); fix the cause above "
                                  f"and rerun `genmodels sync {args.run_dir}` (segments already uploaded are resumed)")
    return commands
