"""Outputs: one atomic writer (fsync, no temp left on a full disk), FIFOs refused, name collisions refused.

Before the fixes (issue #27): a full disk left ``.name.tmp`` behind and printed a traceback;
``--out`` a FIFO blocked forever; ``translate`` of photo.jpg + photo.png wrote one photo.png and
reported 2; ``sample --out ''`` wrote into the current folder; ``--max-memory-gb inf`` was accepted.
"""

from __future__ import annotations

import errno
import os

import pytest
from PIL import Image

from genmodels.commands import main


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error: ") and err.count("\n") == 1, err
    return err


def _full_disk_after(nbytes: int):
    """A PIL save that writes ``nbytes`` and then fails as a full disk does."""
    def save(self, fp, format=None, **params):
        fp.write(b"\x89PNG" + b"x" * nbytes)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return save


def test_a_full_disk_is_one_line_and_leaves_no_temp_file_and_the_old_file_intact(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "grid.png"
    Image.new("RGB", (4, 4)).save(out)
    before = out.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _full_disk_after(100))
    err = _refused(capsys, ["sample", "--ckpt", str(files.dcgan), "--num-samples", "4", "--out", str(out),
                            "--overwrite", "--device", "cpu"])
    assert f"cannot write {out}: no space left on the device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    assert out.read_bytes() == before


def test_the_atomic_writer_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    from genmodels.atomic import atomic_write

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.path.realpath(f"/proc/self/fd/{fd}")), real(fd)))
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"abc"))
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert synced[-1] == str(tmp_path.resolve())
    assert any(p.startswith(str(tmp_path.resolve() / ".a.bin.tmp-")) for p in synced)


def test_a_fifo_output_is_refused_before_any_work(files, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    err = _refused(capsys, ["sample", "--ckpt", str(files.dcgan), "--num-samples", "4", "--out", str(fifo),
                            "--overwrite", "--device", "cpu"])
    assert "FIFO" in err


def test_an_empty_out_is_refused(files, capsys):
    assert "--out" in (err := _refused(capsys, ["sample", "--ckpt", str(files.dcgan), "--out", "", "--device", "cpu"])) and "empty" in err


def test_translate_refuses_two_inputs_that_would_write_one_output(files, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in"
    source.mkdir()
    Image.new("RGB", (16, 16), "red").save(source / "photo.jpg")
    Image.new("RGB", (16, 16), "blue").save(source / "photo.png")
    monkeypatch.setattr("genmodels.commands.common.load_checkpoint_model",
                        lambda *a, **k: pytest.fail("the checkpoint was opened before the names were checked"))
    err = _refused(capsys, ["translate", "--ckpt", str(files.dcgan), "--input", str(source), "--out", str(tmp_path / "out")])
    assert "photo.jpg" in err and "photo.png" in err and "would both be translated to photo.png" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_max_memory_gb_must_be_finite_and_positive(files, value, capsys):
    err = _refused(capsys, ["sample", "--ckpt", str(files.dcgan), "--max-memory-gb", value, "--out", "x.png"])
    assert "--max-memory-gb" in err and "must be > 0 and finite" in err
