"""The training bar counts iterations toward --max_iterations, with rate, ETA and losses, across a mid-epoch resume."""

from __future__ import annotations

import re

import pytest

from tests.cli.common import TINY_DCGAN, fit

# 1,617 digits at batch 256: 7 batches per epoch, so 4 stops mid-epoch and 9 crosses an epoch.
ARGS = ["--trainer.enable_progress_bar", "true", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
        "--trainer.log_every_n_steps", "1", "--sample_grid.every_n_iterations", "0", "--checkpoint.every_n_iterations", "2",
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "256", *TINY_DCGAN]


def _last_bar(text: str) -> str:
    return [part for part in re.split(r"[\r\n]", text) if part.startswith("iteration")][-1]


@pytest.mark.slow
def test_bar_counts_iterations_to_the_budget_and_resumes_mid_epoch(tmp_path, capsys):
    run = tmp_path / "run"
    fit("dcgan/digits.yaml", run, *ARGS, "--max_iterations", "4")
    first = capsys.readouterr().out
    assert "Epoch " not in first  # Lightning's per-epoch bar is replaced
    bar = _last_bar(first)
    assert re.search(r"\| 4/4 \[", bar) and ("it/s" in bar or "s/it" in bar), bar
    assert "loss_d=" in bar and "loss_g=" in bar, bar

    fit("dcgan/digits.yaml", run, *ARGS, "--max_iterations", "9", "--ckpt_path", "last")
    resumed = capsys.readouterr().out
    bars = [part for part in re.split(r"[\r\n]", resumed) if part.startswith("iteration")]
    assert re.search(r"\| 4/9 \[", bars[0]), bars[0]  # starts where the run stopped, not at 0 or at the epoch's start
    assert re.search(r"\| 9/9 \[", bars[-1]), bars[-1]
    assert re.search(r"<\d\d:\d\d", bars[-1]) or "<?" in bars[-1]  # the ETA field
