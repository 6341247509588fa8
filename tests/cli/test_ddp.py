"""Real 2-process DDP on CPU (gloo), launched through the CLI as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.cli.common import EXPERIMENTS, ROOT, TINY, TINY_DCGAN


def _launch(tmp_path: Path, strategy: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    args = [
        sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN,
        "--trainer.devices", "2", "--trainer.strategy", strategy, "--trainer.num_sanity_val_steps", "0",
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "32", "--max_iterations", "3",
        "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.callbacks+=tests.ddp_helpers.DumpRankState", f"--trainer.callbacks.out_dir={tmp_path / 'ranks'}", *extra,
    ]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.ddp
def test_two_process_ddp_keeps_ranks_in_sync(tmp_path):
    result = _launch(tmp_path, "ddp_find_unused_parameters_true")
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["iteration"] == rank1["iteration"] == 3
    # Each rank trained on its own shard (different real images) ...
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"])
    # ... yet the weights are identical afterwards: gradients were all-reduced for G and D.
    # (BatchNorm running statistics are buffers: DDP broadcasts them from rank 0 at the start of
    # every forward, so they legitimately differ right after the last local update.)
    parameters = [n for n in rank0["state_dict"] if not n.rsplit(".", 1)[-1].startswith(("running_", "num_batches"))]
    assert len(parameters) == 12  # every weight and BN affine parameter of G and D
    for name in parameters:
        assert torch.equal(rank0["state_dict"][name], rank1["state_dict"][name]), name
    initial = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert initial["genmodels"]["iteration"] == 3
    assert len(initial["genmodels"]["torch_rng"]) == 2  # one RNG state per rank
    assert len(list((tmp_path / "run/wandb").glob("offline-run-*"))) == 1  # rank 0 logs, once


@pytest.mark.ddp
def test_ddp_without_unused_parameter_handling_fails_with_the_fix(tmp_path):
    result = _launch(tmp_path, "ddp")
    assert result.returncode != 0
    assert "ddp_find_unused_parameters_true" in result.stderr


@pytest.mark.ddp
def test_sync_batchnorm_on_cpu_processes_fails_before_training_with_the_reason(tmp_path):
    # The flag converts DCGAN's BatchNorms to nn.SyncBatchNorm; torch's DDP refuses those on CPU
    # modules when it wraps the model, so the run stops before the first batch, saying why.
    result = _launch(tmp_path, "ddp_find_unused_parameters_true", "--trainer.sync_batchnorm", "true")
    assert result.returncode != 0
    assert "SyncBatchNorm layers only work with GPU modules" in result.stderr
    assert not (tmp_path / "ranks").exists()  # no rank reached the end of a training run
    assert not list((tmp_path / "run").glob("checkpoints/iter_*.ckpt"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ddp
def test_two_nodes_one_process_each_via_torchrun(tmp_path):
    """Multi-node on one machine: two torchrun 'nodes' of one process each, on loopback."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    common = [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN,
        "--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.strategy", "ddp_find_unused_parameters_true",
        "--trainer.num_sanity_val_steps", "0", "--data.init_args.image_size", "16", "--data.init_args.batch_size", "32",
        "--max_iterations", "3", "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.callbacks+=tests.ddp_helpers.DumpRankState", f"--trainer.callbacks.out_dir={tmp_path / 'ranks'}",
    ]
    nodes = [
        subprocess.Popen(
            [str(Path(sys.executable).with_name("torchrun")), "--nnodes", "2", "--nproc-per-node", "1",
             "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "genmodels", *common],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), outputs[0][-3000:] + outputs[1][-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"])
    for name, value in rank0["state_dict"].items():
        if not name.rsplit(".", 1)[-1].startswith(("running_", "num_batches")):
            assert torch.equal(value, rank1["state_dict"][name]), name
    assert len(list((tmp_path / "run/wandb").glob("offline-run-*"))) == 1


# The model families whose training step is not DCGAN's (several networks per player, image pools,
# growing networks, text encoders): each trains under 2-process DDP with identical weights after.
DDP_FAMILIES = [
    "pix2pix/edges2shapes_cpu.yaml", "cyclegan/red2blue_cpu.yaml",
    "stackgan/shapes.yaml", "attngan/shapes.yaml", "dfgan/shapes.yaml",
    "progan/digits.yaml", "stylegan/digits.yaml", "stylegan2/digits.yaml", "biggan/digits.yaml",
]


@pytest.mark.ddp
@pytest.mark.parametrize("config", DDP_FAMILIES)
def test_every_adversarial_family_trains_under_ddp_with_ranks_in_sync(config, tmp_path):
    from tests.cli.common import tiny_args as _tiny_args
    from tests.cli.test_experiments import _data_args

    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    args = [
        sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / config), *TINY,
        *_tiny_args(config), *_data_args(config, tmp_path), "--data.init_args.batch_size", "4",
        "--trainer.devices", "2", "--trainer.strategy", "ddp_find_unused_parameters_true",
        "--trainer.num_sanity_val_steps", "0", "--trainer.limit_val_batches", "0", "--max_iterations", "2",
        "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.callbacks+=tests.ddp_helpers.DumpRankState", f"--trainer.callbacks.out_dir={tmp_path / 'ranks'}",
    ]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["iteration"] == rank1["iteration"] == 2
    trained = [n for n, v in rank0["state_dict"].items()
               if v.is_floating_point() and not n.rsplit(".", 1)[-1].startswith(("running_", "num_batches"))]
    assert trained
    for name in trained:
        if ".pool" in name or name.startswith(("pool_", "caption_bank", "example")):
            continue  # per-rank state by design (image pools, example sources drawn on each rank)
        assert torch.equal(rank0["state_dict"][name], rank1["state_dict"][name]), name
