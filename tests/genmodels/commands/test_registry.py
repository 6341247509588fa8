"""The registry (`genmodels.commands.COMMANDS`), ``genmodels --help`` and ``genmodels <command> --help``."""

from __future__ import annotations

import argparse
import sys
import types
import warnings

import pytest

from genmodels.commands import main
from genmodels.commands import COMMANDS, build_parser, command_names, invoke

# Listed by hand so that the help test cannot pass on an empty or shrunken registry.
MINIMUM = {
    "fit", "validate", "test", "sample", "interpolate", "export", "evaluate", "train-classifier",
    "prefetch-weights", "style-mix", "truncation-grid", "ppl", "translate", "anomaly", "control", "bias",
    "class-accuracy", "augment", "train-damsm", "r-precision", "serve", "compare", "sweep",
}


def _help_lines(capsys) -> list[str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out.splitlines()


def test_top_level_help_lists_every_registered_command_with_its_line(capsys):
    lines = _help_lines(capsys)
    listed = {line.split()[0] for line in lines if line.startswith("    ") and line.split() and not line.startswith("     ")}
    names = command_names()
    assert MINIMUM <= set(names) and len(names) == len(COMMANDS) == len(set(names))
    assert set(names) <= listed
    assert "predict" not in listed


def test_predict_is_not_a_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--config", "x.yaml"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("genmodels: error: argument <command>: invalid choice: 'predict'")


def test_no_command_prints_the_help_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and "sample" in captured.out
    assert captured.err == "genmodels: error: choose a command (see `genmodels --help`)\n"


@pytest.mark.parametrize("name", [n for n in command_names() if n not in ("fit", "validate", "test")])
def test_command_help_exits_0_and_documents_every_option(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: genmodels {name}")
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in sub.choices[name]._actions:
        if action.help != argparse.SUPPRESS:
            assert action.help, f"{name} {action.option_strings}: no help string"


@pytest.mark.parametrize("name", ["fit", "validate", "test"])
def test_lightning_command_help_is_lightningclis_without_the_args_warning(name, capsys, monkeypatch):
    # As the console script runs: sys.argv holds the same arguments the dispatcher passes on.
    monkeypatch.setattr(sys, "argv", ["genmodels", name, "--help"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--max_iterations" in out and "--trainer" in out
    assert not [w for w in caught if "args parameter" in str(w.message)]


def test_adding_a_command_is_one_registry_entry(monkeypatch, capsys):
    module = types.ModuleType("genmodels.commands.example_command")
    module.NAME, module.HELP = "example", "an example command"

    def add_parser(subparsers):
        parser = subparsers.add_parser(module.NAME, help=module.HELP)
        parser.add_argument("--root", required=True, help="data root")
        return parser

    module.add_parser = add_parser
    module.run = lambda args: f"checked {args.root}"
    monkeypatch.setitem(sys.modules, "genmodels.commands.example_command", module)
    monkeypatch.setattr("genmodels.commands.COMMANDS", [*COMMANDS, "example_command"])
    assert invoke(["example", "--root", "data"]) == "checked data"
    assert "example" in _help_lines(capsys)[-1]
    with pytest.raises(SystemExit) as exit_info:
        invoke(["example"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --root" in capsys.readouterr().err
