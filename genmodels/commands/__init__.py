"""The ``genmodels`` commands: one module per command, one parser, one error path.

Every module in `COMMANDS` defines ``NAME`` (the command word), ``HELP`` (one line for
``genmodels --help``), ``add_parser(subparsers)`` and ``run(args)``. fit/validate/test also set
``RAW_ARGV = True`` and ``run_argv(argv)``: LightningCLI parses their arguments itself.
Adding a command is adding its module name to `COMMANDS`.

`main` is the ``genmodels`` console script; `invoke` is what it runs and what tests call in-process:
it parses, runs, and turns every user error (a `UserError`, argparse's usage errors, a missing
file, a bad value) into one line ``genmodels: error: <message>`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Any, NoReturn, Optional, Sequence

from genmodels.commands.common import CommandParser, UsageError, check_required, resolve_device
from genmodels.errors import UserError

__all__ = ["COMMANDS", "build_parser", "command_modules", "command_names", "invoke", "main", "version", "USER_ERRORS"]

#: The command modules (under genmodels.commands), in the order ``genmodels --help`` lists them.
COMMANDS: list[str] = [
    "fit",
    "validate",
    "test",
    "sample",
    "interpolate",
    "export",
    "import_weights",
    "check_data",
    "evaluate",
    "train_classifier",
    "prefetch_weights",
    "style_mix",
    "truncation_grid",
    "ppl",
    "translate",
    "anomaly",
    "control",
    "bias",
    "class_accuracy",
    "train_attributes",
    "augment",
    "train_damsm",
    "r_precision",
    "serve",
    "compare",
    "sync",
    "sweep",
]

#: Exceptions that are the user's to fix (one line, exit 2); anything else is a bug and keeps its
#: traceback. Library code that rejects an input raises a `UserError` subclass (`genmodels.errors`).
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)

DESCRIPTION = (
    "Generative image models on PyTorch Lightning: train (fit/validate/test with --config experiments/...yaml), "
    "sample, evaluate, export and explore checkpoints. `genmodels <command> --help` describes each command."
)


def version() -> str:
    """The installed distribution's version (the package's own constant when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("genmodels")
    except PackageNotFoundError:
        import genmodels

        return genmodels.__version__


def command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"genmodels.commands.{name}") for name in COMMANDS]


def command_names() -> list[str]:
    return [module.NAME for module in command_modules()]


def _module_named(word: str) -> Optional[ModuleType]:
    for name in COMMANDS:
        if name.replace("_", "-") == word:
            return importlib.import_module(f"genmodels.commands.{name}")
    return None


def build_parser() -> argparse.ArgumentParser:
    """The full ``genmodels`` parser: every registered command with its options."""
    parser = CommandParser(prog="genmodels", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"genmodels {version()}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>", required=True,
                                       parser_class=CommandParser)
    for module in command_modules():
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    file_errors = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    if isinstance(err, file_errors) and err.filename and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    return " ".join(text.split())


def fail(err: BaseException) -> NoReturn:
    """Print ``genmodels: error: <one line>`` and exit 2."""
    print(f"genmodels: error: {_one_line(err)}", file=sys.stderr)
    raise SystemExit(2)


def invoke(argv: Sequence[str]) -> Any:
    """Run ``genmodels <argv>``; returns the command's result. User errors exit 2 with one stderr line."""
    argv = list(argv)
    try:
        module = _module_named(argv[0]) if argv else None
        # getattr: only fit/validate/test set RAW_ARGV (LightningCLI parses their arguments).
        if module is not None and getattr(module, "RAW_ARGV", False):
            return module.run_argv(argv[1:])
        parser = build_parser()
        if not argv:
            parser.print_help()
            raise UsageError("genmodels", "choose a command")
        args = parser.parse_args(argv)
        check_required(args, f"genmodels {args.command}")
        resolve_device(args)
        return args._run(args)
    except USER_ERRORS as err:
        fail(err)


def main(args: Optional[Sequence[str]] = None) -> Any:
    """Entry point of the ``genmodels`` console script and ``python -m genmodels``.

    Every command, fit/validate/test included, is dispatched by `invoke` (one parser, one error
    path: a user error prints ``genmodels: error: ...`` and exits 2). It lives here, above the
    commands, so that `genmodels.cli` (LightningCLI, which fit/validate/test use) never calls back up.
    Only this package's parsers are imported before a command runs: ``genmodels --help`` and
    ``genmodels CMD --help`` print without importing torch or Lightning (scripts/bench_startup.py).
    """
    if args is None:  # the console script: `sys.exit(main())` must see None (exit 0), not the command's result
        invoke(sys.argv[1:])
        return None
    return invoke(list(args))
