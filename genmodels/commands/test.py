"""``genmodels test``: LightningCLI's test (`genmodels.cli.GenModelsCLI`)."""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _lightning

NAME = "test"
HELP = "run the test loop of a checkpoint on the experiment's test split"
DESCRIPTION = (
    "Test a checkpoint: `genmodels test --config <experiment>.yaml --ckpt_path <ckpt>`."
)
RAW_ARGV = True  # LightningCLI parses the arguments itself


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    return _lightning.add_parser(subparsers, NAME, HELP, DESCRIPTION)


def run_argv(argv: list[str]) -> Any:
    return _lightning.run_argv(NAME, argv)


def run(args: argparse.Namespace) -> Any:
    raise AssertionError("test is dispatched through run_argv")
