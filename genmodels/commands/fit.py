"""``genmodels fit``: LightningCLI's fit (`genmodels.cli.GenModelsCLI`)."""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _lightning

NAME = "fit"
HELP = "train a model from an experiment YAML (LightningCLI), with run directory, resume and W&B logging"
DESCRIPTION = (
    "Train a model: `genmodels fit --config experiments/<model>/<dataset>.yaml`. A fresh run refuses a run "
    "directory that already holds checkpoints; `--ckpt_path last` resumes."
)
RAW_ARGV = True  # LightningCLI parses the arguments itself


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    return _lightning.add_parser(subparsers, NAME, HELP, DESCRIPTION)


def run_argv(argv: list[str]) -> Any:
    return _lightning.run_argv(NAME, argv)


def run(args: argparse.Namespace) -> Any:
    raise AssertionError("fit is dispatched through run_argv")
