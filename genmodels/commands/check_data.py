"""``genmodels check-data``: find and read a config's dataset without training.

    genmodels check-data --config experiments/stylegan/celeba.yaml [--data.init_args.data_dir /data] [--decode]

The datamodule is built from the YAML's ``data:`` section (with any ``--data.*`` overrides) by
`genmodels.resolve.build_datamodule` (allowlisted class names, the jsonargparse machinery of ``genmodels fit``), so what is checked is what training would read;
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
    """The datamodule of ``config``'s ``data:`` section with ``--data.*`` overrides applied.

    `genmodels.resolve.build_datamodule`, the builder of every command: class names are checked
    against the allowlist as text before anything is imported.
    """
    from genmodels.resolve import build_datamodule as build

    return build(Path(config), overrides)


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
