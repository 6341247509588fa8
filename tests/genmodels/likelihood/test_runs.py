"""The flows through the CLI: exact resume with data-dependent init (Glow) and running averages
(RealNVP), 2-process DDP agreement, and the error for an image size the squeezes cannot divide."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.cli import ConfigError, GenModelsCLI
from tests.cli.common import EXPERIMENTS, ROOT, TINY, fit, load
from tests.cli.test_resume import _assert_states_equal

# 1,617 digits at batch 256: 6 batches per epoch, so N = 4 stops mid-epoch; a temperature grid
# every 2 iterations and a validation pass per epoch must not disturb the resumed RNG streams.
TINY_GLOW = [
    "--data.init_args.image_size", "16", "--data.init_args.batch_size", "256",
    "--model.init_args.steps_per_level", "1", "--model.init_args.hidden_channels", "4",
    "--trainer.logger", "false", "--trainer.check_val_every_n_epoch", "1",
    "--checkpoint.every_n_iterations", "3", "--sample_grid.every_n_iterations", "4",
    "--trainer.callbacks.every_n_iterations", "2", "--trainer.callbacks.samples_per_temperature", "2",
]
N = 4


POLYAK = ["--model.init_args.optimizer", "adamax", "--model.init_args.polyak_iterations", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], POLYAK], ids=["adam", "adamax_polyak"])
def test_resumed_glow_equals_uninterrupted_glow(tmp_path: Path, options):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("glow/digits.yaml", straight, "--max_iterations", str(2 * N), *TINY_GLOW, *options)
    fit("glow/digits.yaml", resumed, "--max_iterations", str(N), *TINY_GLOW, *options)
    fit("glow/digits.yaml", resumed, "--max_iterations", str(2 * N), "--ckpt_path", "last", *TINY_GLOW, *options)

    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    # The Polyak average is saved and restored (equal below), and has moved away from the weights.
    averaged = [k for k in b["state_dict"] if k.startswith("flow_polyak.")]
    assert bool(averaged) == bool(options)
    if options:
        key = next(k for k in averaged if k.endswith("conv1.weight"))
        assert not torch.equal(b["state_dict"][key], b["state_dict"][key.replace("flow_polyak.", "flow.", 1)])
    flags = [k for k in b["state_dict"] if k.endswith("initialized")]
    assert flags and all(b["state_dict"][k].item() == 1 for k in flags)
    # Equal weights prove actnorm was not re-initialized on the resumed launch's first batch.
    _assert_states_equal(a["state_dict"], b["state_dict"], "state_dict")
    _assert_states_equal(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    _assert_states_equal(a["lr_schedulers"], b["lr_schedulers"], "lr_schedulers")
    _assert_states_equal(a["genmodels"]["torch_rng"], b["genmodels"]["torch_rng"], "rng")
    grids = sorted(p.name for p in (resumed / "samples").glob("temperatures_*.png"))
    assert grids == [f"temperatures_iter_{i:08d}.png" for i in (2, 4, 6, 8)]


@pytest.mark.slow
def test_resumed_realnvp_equals_uninterrupted_realnvp(tmp_path: Path):
    """The flow-level BatchNorm's running averages are buffers: saved, restored, and equal after a
    resume to those of a run that was never interrupted (validation, in eval mode, leaves them)."""
    from genmodels import RealNVP
    from tests.cli.common import model_tiny_args

    args = [*model_tiny_args(RealNVP), "--data.init_args.image_size", "16", "--data.init_args.batch_size", "256",
            "--trainer.logger", "false", "--trainer.check_val_every_n_epoch", "1",
            "--checkpoint.every_n_iterations", "3", "--sample_grid.every_n_iterations", "4"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("realnvp/digits.yaml", straight, "--max_iterations", str(2 * N), *args)
    fit("realnvp/digits.yaml", resumed, "--max_iterations", str(N), *args)
    fit("realnvp/digits.yaml", resumed, "--max_iterations", str(2 * N), "--ckpt_path", "last", *args)
    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    averages = [k for k in b["state_dict"] if "output_norm.running_" in k]
    assert averages and not torch.equal(b["state_dict"][averages[0]], torch.zeros_like(b["state_dict"][averages[0]]))
    _assert_states_equal(a["state_dict"], b["state_dict"], "state_dict")
    _assert_states_equal(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    _assert_states_equal(a["genmodels"]["torch_rng"], b["genmodels"]["torch_rng"], "rng")


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ranks_initialize_actnorm_identically(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    args = [
        sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / "glow/digits.yaml"), *TINY,
        *TINY_GLOW[:6], "--trainer.logger", "false", "--data.init_args.batch_size", "32",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.num_sanity_val_steps", "0",
        "--max_iterations", "2", "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.callbacks+=tests.ddp_helpers.DumpRankState", f"--trainer.callbacks.out_dir={tmp_path / 'ranks'}",
    ]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"])  # different shards ...
    flags = [k for k in rank0["state_dict"] if k.endswith("initialized")]
    assert flags and all(r["state_dict"][k].item() == 1 for r in (rank0, rank1) for k in flags)
    for name, value in rank0["state_dict"].items():
        # ... yet every weight agrees: actnorm's init statistics were all-reduced, then DDP
        # averaged the gradients. Initialized per rank, the two would differ from the start.
        assert torch.equal(value, rank1["state_dict"][name]), name


@pytest.mark.parametrize("config, message", [
    ("glow/digits.yaml", r"Glow squeezes 3 time\(s\).*divisible by 8; got 28x28"),
    ("realnvp/digits.yaml", r"RealNVP squeezes 2 time\(s\).*divisible by 4; got 30x30"),
])
def test_an_image_size_the_squeeze_cannot_divide_fails_before_training(config, message):
    size = message.split("got ")[1].split("x")[0]
    with pytest.raises(ConfigError, match=message):
        GenModelsCLI(args=["--config", str(EXPERIMENTS / config), "--trainer.logger", "false",
                           "--data.init_args.image_size", size], run=False)
