"""scripts/bench_gpu.sh: every command of the GPU suite runs, with its flags, in the CPU smoke mode."""

import os
import subprocess
import sys

import pytest

from tests.cli.common import ROOT


@pytest.mark.slow
def test_gpu_suite_commands_run_in_smoke_mode(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, SMOKE="1", PYTHON=sys.executable, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(["bash", str(ROOT / "scripts/bench_gpu.sh"), str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    tables = {name: (out / f"{name}.txt").read_text() for name in ("overhead", "options", "fid10k", "data", "stylegan2", "biggan")}
    assert all(line in tables["overhead"] for line in ("gan ", "dcgan ", "wgangp "))
    assert "ratio to fp32" in tables["options"] and "channels_last" in tables["options"]
    assert "torch-fidelity" in tables["fid10k"] and "relative FID difference" in tables["fid10k"]
    assert "ratio loader/step" in tables["data"] and "2 workers" in tables["data"]
    assert "sec/kimg" in tables["stylegan2"]
    official = (out / "stylegan2_official.txt").read_text()  # runs when OFFICIAL_STYLEGAN2_ADA names a checkout
    assert ("skipped" in official) != ("sec/kimg" in official)
    assert "genmodels BigGAN (Trainer.fit)" in tables["biggan"] and "G it/s" in tables["biggan"]
