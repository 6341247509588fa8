"""download_pix2pix.sh / download_cyclegan.sh: the public URL pattern, and archives land in the datamodule layouts.

``curl`` is replaced by a stub on PATH that records the URL and serves a local archive, so no network is used.
"""

import subprocess
import tarfile
import zipfile
from pathlib import Path

from datamodules import PairedImageDataModule, UnpairedImageDataModule
from tests.datamodules.formats import write_cyclegan, write_pix2pix

ROOT = Path(__file__).resolve().parents[2]


def _stub_curl(tmp_path: Path, archive: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "urls.txt"
    curl = bin_dir / "curl"
    # Stub: `curl ... -o OUT URL` copies the prepared archive to OUT and logs URL.
    curl.write_text(f'#!/bin/bash\nwhile [ $# -gt 0 ]; do case "$1" in -o) OUT=$2; shift 2;; -*) shift;; *) URL=$1; shift;; esac; done\n'
                    f'echo "$URL" >> {log}\ncp {archive} "$OUT"\n')
    curl.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "log": log}


def _run(script: str, name: str, data_dir: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / script), name, str(data_dir)], capture_output=True, text=True,
                          env={"PATH": env["PATH"]})


def test_pix2pix_script_fetches_the_public_archive_into_the_paired_layout(tmp_path):
    source = write_pix2pix(tmp_path / "src", "facades", {"train": 2, "val": 1})
    archive = tmp_path / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="facades")
    env = _stub_curl(tmp_path, archive)
    result = _run("download_pix2pix.sh", "facades", tmp_path / "data", env)
    assert result.returncode == 0, result.stderr
    assert env["log"].read_text().split() == ["http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"]
    assert len(PairedImageDataModule("facades", data_dir=str(tmp_path / "data"), image_size=32)._dataset("train")) == 2
    assert _run("download_pix2pix.sh", "nonsense", tmp_path / "data", env).returncode == 2


def test_cyclegan_script_fetches_the_public_archive_into_the_unpaired_layout(tmp_path):
    source = write_cyclegan(tmp_path / "src", "horse2zebra")
    archive = tmp_path / "horse2zebra.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in source.rglob("*.jpg"):
            zf.write(path, Path("horse2zebra") / path.relative_to(source))
    env = _stub_curl(tmp_path, archive)
    result = _run("download_cyclegan.sh", "horse2zebra", tmp_path / "data", env)
    assert result.returncode == 0, result.stderr
    assert env["log"].read_text().split() == ["https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"]
    assert len(UnpairedImageDataModule("horse2zebra", data_dir=str(tmp_path / "data"), image_size=32)._dataset("train")) == 4
