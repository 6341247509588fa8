"""A checkpoint crafted to run code when unpickled is refused by every command that opens one."""

from pathlib import Path

import pytest
import torch

from genmodels.apps import serve
from genmodels.apps.export import load_generative_model
from genmodels.checkpoints import CheckpointError
from genmodels.commands import main
from tests.genmodels.apps.model_files import malicious_checkpoint, tiny_dcgan


@pytest.fixture()
def crafted(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran.txt"
    return malicious_checkpoint(tmp_path / "crafted.ckpt", marker), marker


def test_the_crafted_file_really_runs_code_when_fully_unpickled(crafted):
    path, marker = crafted
    torch.load(path, weights_only=False)  # what a careless loader would do
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "--out", "grid.png"],
        ["interpolate", "--out", "interp.gif"],
        ["export", "--out", "generator.pt"],
        ["export", "--out", "generator.pt2", "--format", "program"],
        ["serve", "--api"],
        ["serve"],
    ],
    ids=lambda c: " ".join(c[:1] + c[-1:]),
)
def test_commands_refuse_it_and_say_it_needs_trust(crafted, command, capsys, monkeypatch):
    path, marker = crafted
    monkeypatch.setattr(serve, "run_api", lambda *a, **k: pytest.fail("the API started"))
    monkeypatch.setattr(serve, "run_streamlit", lambda *a, **k: pytest.fail("Streamlit started"))
    with pytest.raises(SystemExit) as exit_info:
        main([command[0], "--ckpt", str(path), *command[1:], "--device", "cpu"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "genmodels: error: refusing to load" in error and "needs trust" in error
    assert not marker.exists()
    assert not Path("generator.pt").exists() and not Path("grid.png").exists()


def test_augment_refuses_it(crafted, capsys):
    path, marker = crafted
    with pytest.raises(SystemExit):
        main(["augment", "--gen", str(path), "--data", "digits", "--device", "cpu"])
    assert "needs trust" in capsys.readouterr().err and not marker.exists()


def test_a_class_outside_genmodels_is_not_imported(tmp_path):
    model = tiny_dcgan()
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {}, "genmodels": {"model_class": "subprocess.Popen"}}, path)
    with pytest.raises(CheckpointError, match="is not one genmodels builds"):
        load_generative_model(path)
