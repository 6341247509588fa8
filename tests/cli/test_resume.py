"""Exact resume: 2N iterations straight equal N, stop, resume, N more."""

from pathlib import Path

import pytest
import torch

from tests.cli.common import TINY_DCGAN, fit, load
from tests.wandb_records import history, run_ids, wait_until_closed

# 1,617 training digits at batch 256: 6 batches per epoch, so N = 4 stops mid-epoch and the
# resumed half crosses an epoch boundary (with a validation pass there).
DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "256",
          "--trainer.check_val_every_n_epoch", "1", "--checkpoint.every_n_iterations", "3",
          "--sample_grid.every_n_iterations", "4", *TINY_DCGAN]
N = 4


def _assert_states_equal(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where} keys differ"
        for k in a:
            _assert_states_equal(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_states_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a} != {b}"


# DCGAN with an EMA generator; WGAN-GP with n_critic, the random interpolates of its penalty and a
# per-iteration LR schedule (scheduler state and the optimizers' rates must resume too).
CASES = {
    "dcgan/digits.yaml": ["--model.init_args.ema_decay", "0.9"],
    "wgan_gp/digits.yaml": ["--model.init_args.n_critic", "2", "--model.init_args.lr_schedule", "linear",
                            "--model.init_args.lr_decay_start", "2", "--model.init_args.lr_decay_end", "20"],
}


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(CASES))
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, config: str):
    args = [*DIGITS, *CASES[config]]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(config, straight, "--max_iterations", str(2 * N), *args)
    fit(config, resumed, "--max_iterations", str(N), *args)
    first_id = (resumed / "wandb_run_id").read_text().strip()
    fit(config, resumed, "--max_iterations", str(2 * N), "--ckpt_path", "last", *args)

    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["genmodels"]["iteration"] == b["genmodels"]["iteration"] == 2 * N
    _assert_states_equal(a["state_dict"], b["state_dict"], "state_dict")  # G, D and BN buffers
    _assert_states_equal(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    _assert_states_equal(a["lr_schedulers"], b["lr_schedulers"], "lr_schedulers")
    if any("ema_decay" in arg for arg in CASES[config]):
        assert any(k.startswith("generator_ema.") for k in b["state_dict"])  # EMA saved and resumed
    _assert_states_equal(a["genmodels"]["torch_rng"], b["genmodels"]["torch_rng"], "rng")
    assert a["DigitsDataModule"] == b["DigitsDataModule"]

    # The same W&B run continued: one id across both launches, and its history covers both.
    assert (resumed / "wandb_run_id").read_text().strip() == first_id
    logs = sorted((resumed / "wandb").glob("offline-run-*/run-*.wandb"))
    for log in logs:
        wait_until_closed(log)
    assert len(logs) == 2 and all(run_ids(f) == {first_id} for f in logs)
    iterations = sorted({row["iteration"] for f in logs for row in history(f) if "train/loss_d" in row})
    assert iterations[0] <= N < iterations[-1] == 2 * N

    # The first launch's config is kept; the resumed launch is recorded beside it.
    assert (resumed / "config.yaml").is_file() and (resumed / "config.resume-1.yaml").is_file()
    assert "max_iterations: 4" in (resumed / "config.yaml").read_text()
    assert "max_iterations: 8" in (resumed / "config.resume-1.yaml").read_text()
