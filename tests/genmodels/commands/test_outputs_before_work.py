"""Commands that work for minutes check their output before starting: the work is never reached."""

from __future__ import annotations

import pytest

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def _never(name):
    return lambda *a, **k: pytest.fail(f"{name} ran although the output cannot be written")


def test_evaluate_checks_out_before_loading_anything(files, monkeypatch, capsys):
    monkeypatch.setattr("genmodels.commands.evaluate.evaluate", _never("evaluate"))
    monkeypatch.setattr("genmodels.commands.common.load_checkpoint_model", _never("loading the checkpoint"))
    err = _refused(capsys, ["evaluate", "--ckpt", str(files.dcgan), "--out", str(files.unwritable / "r.json")])
    assert f"--out {files.unwritable / 'r.json'} cannot be written: {files.text} is a file" in err
    existing = files.root / "existing.json"
    existing.write_text("{}")
    try:
        assert "already exists; pass --overwrite" in _refused(capsys, ["evaluate", "--ckpt", str(files.dcgan), "--out", str(existing)])
    finally:
        existing.unlink()


def test_train_classifier_checks_out_before_training(files, monkeypatch, capsys):
    monkeypatch.setattr("genmodels.metrics.classifier.train_classifier", _never("train_classifier"))
    err = _refused(capsys, ["train-classifier", "--data", str(EXPERIMENTS / "dcgan/digits.yaml"), "--out", str(files.unwritable / "l.pt")])
    assert "cannot be written" in err


def test_train_attributes_checks_out_before_training(files, monkeypatch, capsys):
    monkeypatch.setattr("genmodels.apps.attributes.train_attribute_classifier", _never("train_attribute_classifier"))
    err = _refused(capsys, ["train-attributes", "--data", str(EXPERIMENTS / "dcgan/digits.yaml"), "--out", str(files.dcgan)])
    assert "already exists; pass --overwrite" in err


def test_train_damsm_checks_out_before_building_data_or_model(files, monkeypatch, capsys):
    monkeypatch.setattr("genmodels.text.damsm.DAMSM", _never("DAMSM"))
    monkeypatch.setattr("genmodels.commands._text_data.datamodule", _never("the datamodule"))
    err = _refused(capsys, ["train-damsm", "--dataset", "shapes", "--out", str(files.unwritable / "d.ckpt")])
    assert "cannot be written" in err
    err = _refused(capsys, ["train-damsm", "--dataset", "cub", "--data-dir", str(files.root / "nowhere"), "--out", "d.ckpt"])
    assert "--data-dir" in err and "is not a folder" in err


def test_translate_refuses_its_input_folder_as_output_and_huge_resizes(files, monkeypatch, capsys):
    before = (files.images / "a.png").read_bytes()
    monkeypatch.setattr("genmodels.commands.common.load_checkpoint_model", _never("loading the checkpoint"))
    err = _refused(capsys, ["translate", "--ckpt", str(files.dcgan), "--input", str(files.images), "--out", str(files.images),
                            "--overwrite"])
    assert "is or lies inside the input folder" in err
    err = _refused(capsys, ["translate", "--ckpt", str(files.dcgan), "--input", str(files.images), "--out",
                            str(files.root / "translated"), "--resize", "100000"])
    assert "--resize 100000 needs about" in err and "lower --resize, or raise --max-memory-gb" in err
    assert (files.images / "a.png").read_bytes() == before and not (files.root / "translated").exists()
