"""A training process that receives SIGUSR1 or SIGTERM saves, stops, requeues, and resumes exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genmodels.callbacks import Preemption
from tests.cli.common import EXPERIMENTS, ROOT, TINY, TINY_DCGAN, fit, load

ARGS = [*TINY, *TINY_DCGAN, "--data.init_args.image_size", "16", "--data.init_args.batch_size", "32",
        "--sample_grid.every_n_iterations", "3", "--checkpoint.every_n_iterations", "0"]


def _launch(run: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *ARGS,
         "--trainer.default_root_dir", str(run), *extra],
        cwd=run.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_signal_saves_requeues_and_resumes_exactly(tmp_path, signum):
    # A stand-in `scontrol` records the requeue request, as SLURM's would receive it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'requeue.txt'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", SLURM_JOB_ID="4242",
               PATH=f"{bin_dir}:{os.environ['PATH']}",
               OMP_NUM_THREADS=str(torch.get_num_threads()))  # as in-process, so float reductions match bit for bit
    run = tmp_path / "preempted"
    process = _launch(run, env, "--max_iterations", "100000")
    deadline = time.time() + 120
    while not list((run / "samples").glob("iter_*.png")) and time.time() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.stdout.read()
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "preempted" in output and "requeued" in output
    assert (tmp_path / "requeue.txt").read_text().split() == ["requeue", "4242"]

    stopped = load(run / "checkpoints/last.ckpt")["genmodels"]["iteration"]
    assert 3 <= stopped < 100000
    run_id = (run / "wandb_run_id").read_text().strip()

    # The requeued job: same command plus --ckpt_path last, here with a finite budget.
    total = stopped + 4
    fit("dcgan/digits.yaml", run, *ARGS, "--ckpt_path", "last", "--max_iterations", str(total))
    fit("dcgan/digits.yaml", tmp_path / "straight", *ARGS, "--max_iterations", str(total))
    resumed, straight = load(run / "checkpoints/last.ckpt"), load(tmp_path / "straight/checkpoints/last.ckpt")
    assert resumed["genmodels"]["iteration"] == straight["genmodels"]["iteration"] == total
    for name, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][name]), name
    assert (run / "wandb_run_id").read_text().strip() == run_id
    logs = list((run / "wandb").glob("offline-run-*"))
    assert len(logs) == 2 and all(p.name.endswith(run_id) for p in logs)


@pytest.mark.slow
def test_ctrl_c_saves_at_a_batch_boundary_and_resumes_exactly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS=str(torch.get_num_threads()))
    env.pop("SLURM_JOB_ID", None)
    run = tmp_path / "interrupted"
    process = _launch(run, env, "--max_iterations", "100000")
    deadline = time.time() + 120
    while not list((run / "samples").glob("iter_*.png")) and time.time() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.stdout.read()
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output  # interrupted, as a shell reports Ctrl-C
    assert "interrupted (Ctrl-C): stopped after iteration" in output and "requeued" not in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output

    stopped = load(run / "checkpoints/last.ckpt")["genmodels"]["iteration"]
    assert 3 <= stopped < 100000
    total = stopped + 4
    fit("dcgan/digits.yaml", run, *ARGS, "--ckpt_path", "last", "--max_iterations", str(total))
    fit("dcgan/digits.yaml", tmp_path / "straight", *ARGS, "--max_iterations", str(total))
    resumed, straight = load(run / "checkpoints/last.ckpt"), load(tmp_path / "straight/checkpoints/last.ckpt")
    assert resumed["genmodels"]["iteration"] == straight["genmodels"]["iteration"] == total
    for name, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][name]), name


def test_a_second_ctrl_c_aborts_at_once():
    preemption = Preemption()
    preemption._record(signal.SIGINT, None)  # first: recorded, the batch finishes
    assert preemption.received == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        preemption._record(signal.SIGINT, None)  # second: abort now
    later = Preemption()
    later._record(signal.SIGTERM, None)
    later._record(signal.SIGINT, None)  # a Ctrl-C after a preemption signal still waits for the batch
    assert later.received == signal.SIGINT


# Runs `genmodels fit` with a datamodule whose setup receives SIGNAL (as SLURM sends it while the
# data loads, after the W&B run may have started): before the fix the process died of the signal.
EARLY = """
import os, signal, sys
from datamodules.digits import DigitsDataModule
original = DigitsDataModule.setup
def setup(self, stage=None):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return original(self, stage)
DigitsDataModule.setup = setup
from genmodels.commands import main
main(sys.argv[2:])
"""


@pytest.mark.slow  # a subprocess fit each (~60 s under load)
@pytest.mark.parametrize("name", ["SIGUSR1", "SIGHUP"])
def test_a_signal_before_the_first_step_requeues_without_a_checkpoint_and_says_so(tmp_path, name):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'requeue.txt'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", SLURM_JOB_ID="4242", OMP_NUM_THREADS="1",
               PATH=f"{bin_dir}:{os.environ['PATH']}")
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", EARLY, name, "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *ARGS,
         "--trainer.default_root_dir", str(run), "--max_iterations", "5"],
        env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "preempted before the first training step: no checkpoint was written" in output
    assert "the SLURM job was requeued" in output
    assert (tmp_path / "requeue.txt").read_text().split() == ["requeue", "4242"]
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())
