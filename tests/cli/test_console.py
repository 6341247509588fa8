"""A normal run's console: no third-party tips, no deprecation noise, no warning on a legitimate resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.common import EXPERIMENTS, ROOT, TINY, TINY_DCGAN

NOISE = ("💡", "litlogger", "LeafSpec", "is deprecated", "anonymous setting", "exists and is not empty", "Traceback")
ARGS = [*TINY, *TINY_DCGAN, "--data.init_args.image_size", "16", "--data.init_args.batch_size", "64",
        "--sample_grid.every_n_iterations", "2", "--checkpoint.every_n_iterations", "2"]


def _fit(run: Path, *extra: str) -> str:
    # As a user runs it: W&B not silenced (its own lines are allowed, its warnings are not).
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    env.update(PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *ARGS,
         "--trainer.default_root_dir", str(run), *extra],
        cwd=run.parent, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.slow
def test_a_run_and_its_resume_print_no_third_party_noise(tmp_path: Path):
    run = tmp_path / "run"
    first = _fit(run, "--max_iterations", "2")
    resumed = _fit(run, "--max_iterations", "4", "--ckpt_path", "last")
    for output in (first, resumed):
        assert [n for n in NOISE if n in output] == [], output
        assert "run directory:" in output and "genmodels sync" in output  # our own lines still show
    assert "Restoring states from the checkpoint" in resumed or "last.ckpt" in resumed
