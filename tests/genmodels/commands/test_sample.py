"""``genmodels sample``: huge requests are refused before anything is generated; outputs are not replaced."""

from __future__ import annotations

import pytest

from genmodels.commands import main


@pytest.fixture
def no_generation(monkeypatch):
    """Generation fails the test: what is refused must be refused before it."""
    monkeypatch.setattr("genmodels.apps.generation.generate", lambda *a, **k: pytest.fail("generate() was called"))


def test_a_billion_samples_are_refused_before_generating(files, tmp_path, capsys, no_generation, one_thread):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt", str(files.dcgan), "--num-samples", "1000000000", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--num-samples 1000000000 (1000000000 images of 1x16x16) needs about 1.16 TiB" in err
    assert "lower --num-samples, or raise --max-memory-gb" in err
    assert list(tmp_path.iterdir()) == []


def test_max_memory_gb_is_the_override(files, tmp_path, capsys, one_thread):
    out = tmp_path / "g.png"
    argv = ["sample", "--ckpt", str(files.dcgan), "--num-samples", "16", "--out", str(out), "--device", "cpu"]
    with pytest.raises(SystemExit):  # 16 images of 1x16x16 at 5 bytes a value: 20480 bytes
        main([*argv, "--max-memory-gb", "0.00001"])
    assert "over the --max-memory-gb 1e-05 limit" in capsys.readouterr().err and not out.exists()
    main([*argv, "--max-memory-gb", "0.00002"])
    assert out.is_file()


def test_sample_folder_refuses_to_replace_images_without_overwrite(files, tmp_path, capsys, one_thread):
    out = tmp_path / "samples"
    argv = ["sample", "--ckpt", str(files.dcgan), "--n", "3", "--out", str(out), "--device", "cpu"]
    main(argv)
    first = (out / "000001.png").read_bytes()
    (out / "000001.png").write_bytes(b"edited by hand")
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--seed", "5"])
    assert exit_info.value.code == 2 and "already holds 000000.png, 000001.png, 000002.png" in capsys.readouterr().err
    assert (out / "000001.png").read_bytes() == b"edited by hand"
    main([*argv, "--overwrite"])
    assert (out / "000001.png").read_bytes() == first
