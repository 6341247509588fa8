"""fit, validate and test: LightningCLI (`genmodels.cli.GenModelsCLI`) parses and runs them.

The parser built here only documents their main options for ``genmodels --help`` and the
generated docs; ``genmodels fit --help`` prints LightningCLI's full help (every model, data and
trainer option). jsonargparse's errors are turned into one-line `UsageError`s.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any, Callable

from genmodels.commands import _help_cache
from genmodels.commands.common import UsageError

#: The options documented for all three (LightningCLI accepts many more: see `genmodels fit --help`).
_DOCUMENTED = (
    ("--config", "YAML", "experiment YAML, e.g. experiments/dcgan/digits.yaml (may be given more than once; later files override)"),
    ("--ckpt_path", "PATH", "checkpoint to start from: a file, or 'last' for <run>/checkpoints/last.ckpt (fit resumes from it)"),
    ("--trainer.default_root_dir", "DIR", "run directory (default runs/<experiment>)"),
    ("--max_iterations", "N", "stop after this many iterations (batches); trainer.max_steps counts optimizer steps"),
    ("--model.init_args.NAME", "VALUE", "override a model argument of the YAML (likewise --data.init_args.NAME, --trainer.NAME)"),
    ("--print_config", None, "print the resolved config and exit"),
)


def command(name: str, help: str, description: str) -> tuple[Callable[[Any], argparse.ArgumentParser], Callable[[list[str]], Any], Callable[[argparse.Namespace], Any]]:
    """``add_parser``, ``run_argv`` and ``run`` of the registry's module interface, for the LightningCLI
    subcommand ``name``: its module only names and describes it."""

    def add(subparsers: Any) -> argparse.ArgumentParser:
        return add_parser(subparsers, name, help, description)

    def run_args(argv: list[str]) -> Any:
        return run_argv(name, argv)

    def run(args: argparse.Namespace) -> Any:
        raise AssertionError(f"{name} is dispatched through run_argv")

    return add, run_args, run


def add_parser(subparsers: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=f"{description} Full option list: `genmodels {name} --help`.")
    for flag, metavar, text in _DOCUMENTED:
        if metavar is None:
            parser.add_argument(flag, action="store_true", help=text)
        else:
            parser.add_argument(flag, metavar=metavar, help=text)
    return parser


def run_argv(name: str, argv: list[str]) -> Any:
    """``GenModelsCLI`` on ``[name, *argv]``; jsonargparse errors become one line.

    ``genmodels NAME --help`` alone is printed from `_help_cache` when the sources and libraries that
    rendered it are unchanged (no torch import), and rendered live otherwise.
    """
    if _help_cache.is_help_request(argv):
        _help_cache.print_help(name, lambda: _run_cli(name, argv))
    return _run_cli(name, argv)


def _run_cli(name: str, argv: list[str]) -> Any:
    from jsonargparse import ArgumentError

    from genmodels.cli import GenModelsCLI

    with warnings.catch_warnings():
        # The args parameter is how this dispatcher hands LightningCLI its own arguments.
        warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
        try:
            return GenModelsCLI(args=[name, *argv], parser_kwargs={"exit_on_error": False})
        except ArgumentError as err:
            raise UsageError(f"genmodels {name}", _first_line(err)) from None


def _first_line(err: BaseException) -> str:
    """jsonargparse explains union types over many lines: keep the lines that say what is wrong."""
    noise = ("- Expected a <class 'NoneType'>", "Subtypes:", "Errors:", "Given value type:", "Given value:")
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    kept = [line.removeprefix("- ") for line in lines if not line.startswith(noise)]
    return " ".join(kept)[:600]
