"""``genmodels check-data``: find and read a config's dataset without training.

    genmodels check-data --config experiments/stylegan/celeba.yaml [--data.init_args.data_dir /data] [--decode]

The datamodule is built from the YAML's ``data:`` section (with any ``--data.*`` overrides) by the
same jsonargparse machinery as ``genmodels fit``, so what is checked is what training would read;
the model and trainer sections are not built (no weights, no logger, no run directory).
`ImageDataModule.describe` then searches the layouts the datamodule knows, reads every split
and checks every file (headers; with ``--decode`` it decodes every image), and the report says
what it found: the layout, the root, images per split, the image size the model sees, classes /
attributes / vocabulary, and three sample labels or captions.

Exit status 0 on a complete copy; otherwise 2 with one line naming what is missing or broken,
where it looked and how to get it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import yaml

from genmodels.errors import UserError

__all__ = ["add_parser", "run", "run_argv", "build_datamodule"]

NAME = "check-data"
RAW_ARGV = True  # --data.* overrides are passed through to jsonargparse, as in fit
HELP = "find and read the dataset of a config, report what was found, train nothing"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``check-data`` on an argparse subparsers object; returns its parser.

    Arguments that the parser does not know (``--data.init_args.KEY VALUE`` overrides) are meant
    to be collected with ``parse_known_args`` into ``args.overrides``.
    """
    parser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    parser.add_argument("--config", required=True, type=Path, help="experiment YAML whose data: section is checked")
    parser.add_argument("--decode", action="store_true",
                        help="decode every image file (slow); by default headers and file ends are checked")
    parser.set_defaults(overrides=[], command=run)
    return parser


def build_datamodule(config: Path, overrides: Sequence[str] = ()) -> Any:
    """The datamodule of ``config``'s ``data:`` section with ``--data.*`` overrides applied."""
    from jsonargparse import ArgumentParser
    from pytorch_lightning import LightningDataModule

    if not config.is_file():
        raise UserError(f"config file {config} not found")
    try:
        document = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{config}: not valid YAML ({str(err).splitlines()[0]})") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or "class_path" not in data:
        raise UserError(f"{config} has no data: section with a class_path; check-data needs one")
    foreign = [arg for arg in overrides if arg.startswith("--") and not arg.startswith("--data.")]
    if foreign:
        raise UserError(f"check-data only takes --data.* overrides, got {foreign[0]}")
    parser = ArgumentParser(exit_on_error=False, prog="genmodels check-data")
    parser.add_subclass_arguments(LightningDataModule, "data", required=True, fail_untyped=False)
    try:
        namespace = parser.parse_args(["--data", yaml.safe_dump(data), *overrides])
        return parser.instantiate_classes(namespace).data
    except (ValueError, TypeError, KeyError) as err:  # jsonargparse's ArgumentError is a ValueError... or wraps one
        raise UserError(f"invalid data: section in {config}: {_first_line(err)}") from None
    except Exception as err:
        if type(err).__name__ == "ArgumentError":
            raise UserError(f"invalid data: section in {config}: {_first_line(err)}") from None
        raise


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = [line[2:] for line in lines if line.startswith("- ") and "NoneType" not in line]
    return (reasons or lines or [type(err).__name__])[0]


def run(args: argparse.Namespace) -> int:
    """Builds the datamodule, runs its discovery and prints the report; returns 0 (errors raise)."""
    datamodule = build_datamodule(args.config, list(getattr(args, "overrides", [])))
    if getattr(datamodule, "download", False):
        # The advice of a missing dataset is "rerun with --data.init_args.download true": here too
        # it downloads (or says, in one line, why it could not).
        datamodule.prepare_data()
    describe = getattr(datamodule, "describe", None)
    if describe is None:
        raise UserError(f"{type(datamodule).__name__} has no describe(); check-data works with genmodels datamodules")
    try:
        report = describe(full_decode=args.decode)
    except UserError:
        raise
    except (FileNotFoundError, ValueError) as err:  # a datamodule outside this package, or a plain error
        raise UserError(f"{type(datamodule).__name__}: {' '.join(str(err).split())}") from None
    print(report.format())
    print("complete: every split was found and read")
    return 0


def run_argv(argv: Sequence[str]) -> int:
    """``genmodels check-data ...``: its own options, and every unknown ``--data.*`` as an override."""
    from genmodels.commands.common import CommandParser

    parser = CommandParser(prog="genmodels")
    add_parser(parser.add_subparsers(dest="name", required=True, parser_class=CommandParser))
    args, unknown = parser.parse_known_args([NAME, *argv])
    args.overrides = unknown
    return run(args)
