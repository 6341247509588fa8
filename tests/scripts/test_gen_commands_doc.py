"""docs/commands.md is what scripts/gen_commands_doc.py writes from the current parser."""

import importlib.util

from genmodels.commands import command_names
from tests.cli.common import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("gen_commands_doc", ROOT / "scripts/gen_commands_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_commands_page_is_current():
    generator = _generator()
    text = generator.render()
    assert (ROOT / "docs/commands.md").read_text() == text, "run: python scripts/gen_commands_doc.py"
    for name in command_names():
        assert f"\n## genmodels {name}\n" in text
    assert "| `--num-samples N` |" in text and "| `--num_samples" not in text and "| `--n N` |" not in text  # aliases hidden


def test_check_mode_detects_a_stale_page(tmp_path, monkeypatch):
    generator = _generator()
    monkeypatch.setattr(generator, "DOC", tmp_path / "commands.md")
    (tmp_path / "commands.md").write_text("# Commands\n")
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0 and generator.main(["--check"]) == 0
