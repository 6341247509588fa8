"""``genmodels export`` never writes over its input or an existing file without --overwrite."""

from __future__ import annotations

import hashlib

import pytest

from genmodels.apps.export import EXPORT_FORMAT
from genmodels.commands import main
from tests.cli.common import load


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exit_2(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_export_onto_its_own_input_is_refused_and_the_file_is_unchanged(files, capsys):
    before = _digest(files.dcgan)
    for extra in ([], ["--overwrite"], ["--format", "program"]):
        err = _exit_2(capsys, ["export", "--ckpt", str(files.dcgan), "--out", str(files.dcgan), *extra])
        assert "is also an input of this command" in err
    assert _digest(files.dcgan) == before


def test_export_onto_the_input_through_another_path_is_refused(files, tmp_path, capsys):
    link = tmp_path / "link.ckpt"
    link.symlink_to(files.dcgan)
    before = _digest(files.dcgan)
    assert "is also an input" in _exit_2(capsys, ["export", "--ckpt", str(link), "--out", str(files.dcgan), "--overwrite"])
    assert _digest(files.dcgan) == before


def test_an_existing_output_needs_overwrite(files, tmp_path, capsys):
    out = tmp_path / "generator.pt"
    out.write_bytes(b"someone else's file")
    assert "already exists; pass --overwrite" in _exit_2(capsys, ["export", "--ckpt", str(files.dcgan), "--out", str(out)])
    assert out.read_bytes() == b"someone else's file"
    main(["export", "--ckpt", str(files.dcgan), "--out", str(out), "--overwrite"])
    assert load(out)["format"] == EXPORT_FORMAT
    # and the exported file is itself a --ckpt for the next export
    main(["export", "--ckpt", str(out), "--out", str(tmp_path / "again.pt")])
    assert load(tmp_path / "again.pt")["state_dict"].keys() == load(out)["state_dict"].keys()
