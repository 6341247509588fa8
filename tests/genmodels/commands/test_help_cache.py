"""fit/validate/test --help: LightningCLI's text, served from a cache that can never be stale."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genmodels.commands import _help_cache
from tests.cli.common import ROOT

# Prints `genmodels fit --help` and reports which heavy modules that imported, on stderr.
_PROBE = """
import json, sys
from genmodels.commands import main
try:
    main(["fit", "--help"])
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
heavy = ("torch", "pytorch_lightning", "lightning", "jsonargparse")
print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
"""


def _fit_help(cache) -> tuple[str, list[str]]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(cache), "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, json.loads(result.stderr.strip().splitlines()[-1])


def test_the_second_fit_help_is_the_live_text_without_importing_torch(tmp_path):
    live, imported = _fit_help(tmp_path)
    assert "torch" in imported and "--model.help" in live and "--max_iterations" in live
    (entry,) = (tmp_path / "genmodels" / "help").iterdir()
    assert entry.name.startswith("fit-") and entry.read_text() == live

    cached, imported = _fit_help(tmp_path)
    assert cached == live and imported == []


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A stand-in source tree and cache folder, so the key's inputs can be changed."""
    root = tmp_path / "src"
    (root / "genmodels").mkdir(parents=True)
    (root / "genmodels" / "model.py").write_text("class Model:\n    width: int = 8\n")
    monkeypatch.setattr(_help_cache, "_package_root", lambda name: root / name if (root / name).is_dir() else None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return root


def test_an_edited_source_or_another_library_misses_the_cache(sources, monkeypatch):
    _help_cache.store("fit", "help of width 8\n")
    assert _help_cache.lookup("fit") == "help of width 8\n"
    assert _help_cache.lookup("validate") is None

    (sources / "genmodels" / "model.py").write_text("class Model:\n    width: int = 16\n")
    assert _help_cache.lookup("fit") is None
    (sources / "genmodels" / "model.py").write_text("class Model:\n    width: int = 8\n")
    assert _help_cache.lookup("fit") == "help of width 8\n"

    (sources / "datamodules").mkdir()
    (sources / "datamodules" / "digits.py").write_text("class Digits: ...\n")
    assert _help_cache.lookup("fit") is None
    (sources / "datamodules" / "digits.py").unlink()
    (sources / "datamodules").rmdir()

    monkeypatch.setattr(_help_cache, "_installed", lambda names: f"{names[0]}==99.0")
    assert _help_cache.lookup("fit") is None


def test_the_terminal_width_and_jsonargparse_settings_are_part_of_the_key(sources, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _help_cache.store("fit", "eighty\n")
    monkeypatch.setenv("COLUMNS", "120")
    assert _help_cache.lookup("fit") is None
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("JSONARGPARSE_DEFAULT_ENV", "true")
    assert _help_cache.lookup("fit") is None


def test_a_new_entry_replaces_the_commands_older_ones(sources):
    _help_cache.store("fit", "old\n")
    _help_cache.store("test", "other command\n")
    (sources / "genmodels" / "model.py").write_text("class Model:\n    width: int = 16\n")
    _help_cache.store("fit", "new\n")
    names = sorted(p.name.split("-")[0] for p in _help_cache.cache_dir().iterdir())
    assert names == ["fit", "test"] and _help_cache.lookup("fit") == "new\n"


def test_only_the_bare_help_request_is_served_from_the_cache():
    assert _help_cache.is_help_request(["--help"]) and _help_cache.is_help_request(["-h"])
    assert not _help_cache.is_help_request(["--config", "x.yaml", "--help"])
    assert not _help_cache.is_help_request(["--model.help", "DCGAN"])


def test_a_failed_rendering_is_not_stored_and_keeps_its_exit_status(sources, capsys):
    def failing():
        print("usage: partial")
        raise SystemExit(2)

    with pytest.raises(SystemExit) as exit:
        _help_cache.print_help("fit", failing)
    assert exit.value.code == 2 and "usage: partial" in capsys.readouterr().out
    assert _help_cache.lookup("fit") is None


def test_an_unwritable_cache_still_prints_the_help(sources, monkeypatch, capsys, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))

    def render():
        print("the help")
        raise SystemExit(0)

    with pytest.raises(SystemExit) as exit:
        _help_cache.print_help("fit", render)
    assert exit.value.code == 0 and capsys.readouterr().out == "the help\n"
