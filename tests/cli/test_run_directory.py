"""One writer per run directory; resume finds the newest state whatever the spelling; forks are explicit.

Before these fixes (issue #27): a second launch into a running run trained too (interleaved
checkpoints, one W&B id); a moved or respelled run resumed into ``last-v1.ckpt`` while ``last``
stayed behind; resuming an ``iter_*`` overwrote later checkpoints silently; changed batch size /
seed were not announced; a checkpoint's callback state could make a resume delete a file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.cli.common import ROOT, TINY, TINY_DCGAN, fit, load

DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "64",
          "--checkpoint.every_n_iterations", "2", "--sample_grid.every_n_iterations", "0"]

# Holds an flock on <run>/.genmodels.lock with a host/PID record, as a training run does (no genmodels import).
HOLDER = """
import fcntl, os, socket, sys, time
run = sys.argv[1]
os.makedirs(run, exist_ok=True)
fd = os.open(os.path.join(run, ".genmodels.lock"), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"host={socket.gethostname()}\\npid={os.getpid()}\\n".encode())
open(os.path.join(run, "config.yaml"), "w").write("{}\\n")
print("ready", flush=True)
time.sleep(120)
"""


def _fit(run: Path, *extra: str) -> None:
    fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, *extra)


def _refused(capsys, run: Path, *extra: str) -> str:
    with pytest.raises(SystemExit) as exc:
        _fit(run, *extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("genmodels: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_a_second_launch_into_a_run_that_is_running_is_refused_naming_the_holder(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        before = sorted(p.name for p in run.iterdir())
        message = _refused(capsys, run, "--max_iterations", "2")
        assert f"PID {holder.pid} on host {socket.gethostname()}" in message and "one writer" in message
        assert sorted(p.name for p in run.iterdir()) == before  # nothing written: no wandb id, no checkpoints
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # one tiny fit in a subprocess (~20 s under load) while a second launch is refused
def test_two_launches_of_one_run_only_one_trains(tmp_path, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "genmodels", "fit", "--config", str(ROOT / "experiments/dcgan/digits.yaml"),
                              "--trainer.default_root_dir", str(run), *TINY, *TINY_DCGAN, *DIGITS, "--max_iterations", "100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 240
        while not (run / "checkpoints" / "iter_00000002.ckpt").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.poll() is not None else "timeout"
            time.sleep(0.5)
        message = _refused(capsys, run, "--ckpt_path", "last", "--max_iterations", "4")
        assert f"PID {first.pid}" in message
    finally:
        first.terminate()
        first.wait(timeout=120)


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".genmodels.lock").write_text(f"host={socket.gethostname()}\npid={dead.pid}\n")
    _fit(run, "--max_iterations", "2")
    err = capsys.readouterr().err
    assert f"genmodels: warning: taking over {run / '.genmodels.lock'}: PID {dead.pid}" in err
    assert load(run / "checkpoints" / "last.ckpt")["genmodels"]["iteration"] == 2
    assert (run / ".genmodels.lock").read_text() == ""  # released at the end


@pytest.mark.slow  # three tiny fits
def test_a_moved_and_respelled_run_resumes_from_its_newest_checkpoint(tmp_path, capsys, monkeypatch):
    first = tmp_path / "a" / "run"
    _fit(first, "--max_iterations", "2")
    moved = tmp_path / "b" / "run"
    moved.parent.mkdir()
    shutil.move(str(first), str(moved))
    _fit(moved, "--ckpt_path", "last", "--max_iterations", "4")
    monkeypatch.chdir(tmp_path)
    _fit(Path("b/run"), "--ckpt_path", "last", "--max_iterations", "6")  # relative spelling this time
    names = sorted(p.name for p in (moved / "checkpoints").iterdir())
    assert names == ["iter_00000002.ckpt", "iter_00000004.ckpt", "iter_00000006.ckpt", "last.ckpt"]
    assert load(moved / "checkpoints" / "last.ckpt")["genmodels"]["iteration"] == 6


@pytest.mark.slow  # three tiny fits
def test_resuming_an_earlier_iteration_is_a_fork_refused_unless_asked(tmp_path, capsys):
    run = tmp_path / "run"
    _fit(run, "--max_iterations", "4")
    ckpts = run / "checkpoints"
    last_before = (ckpts / "last.ckpt").read_bytes()
    message = _refused(capsys, run, "--ckpt_path", str(ckpts / "iter_00000002.ckpt"), "--max_iterations", "6")
    assert "iteration 2" in message and "iteration 4" in message and "--fork" in message
    assert (ckpts / "last.ckpt").read_bytes() == last_before
    _fit(run, "--ckpt_path", str(ckpts / "iter_00000002.ckpt"), "--max_iterations", "3", "--fork", "true")
    err = capsys.readouterr().err
    assert "genmodels: warning: --fork: resuming iteration 2" in err
    (aside,) = ckpts.glob("forked-*")
    assert sorted(p.name for p in aside.iterdir()) == ["iter_00000004.ckpt", "last.ckpt"]
    assert (aside / "last.ckpt").read_bytes() == last_before  # nothing lost
    assert load(ckpts / "last.ckpt")["genmodels"]["iteration"] == 3


@pytest.mark.slow  # two tiny fits
def test_changed_settings_on_resume_get_one_warning_line_each(tmp_path, capsys):
    run = tmp_path / "run"
    _fit(run, "--max_iterations", "2")
    capsys.readouterr()
    _fit(run, "--ckpt_path", "last", "--max_iterations", "3", "--data.init_args.batch_size", "32",
         "--seed_everything", "7", "--data.init_args.random_flip", "true")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("genmodels: warning: resuming")]
    assert any("data.init_args.batch_size: 64 -> 32" in w for w in warnings), warnings
    assert any("seed_everything: 0 -> 7" in w for w in warnings), warnings
    assert any("data.init_args.random_flip: False -> True" in w for w in warnings), warnings


@pytest.mark.slow  # two tiny fits
def test_a_checkpoints_callback_state_cannot_make_a_resume_delete_a_file(tmp_path):
    run = tmp_path / "run"
    _fit(run, "--max_iterations", "2")
    ckpts = run / "checkpoints"
    keep = ckpts / "notes.txt"
    keep.write_text("mine\n")
    outside = tmp_path / "precious.txt"
    outside.write_text("mine\n")
    checkpoint = load(ckpts / "last.ckpt")
    for key, state in checkpoint["callbacks"].items():
        if "IterationCheckpoint" in key:
            state.update(last_model_path=str(keep), best_model_path=str(outside), kth_best_model_path=str(outside),
                         best_k_models={str(keep): torch.tensor(0.0), str(outside): torch.tensor(1.0)})
    torch.save(checkpoint, ckpts / "last.ckpt")
    _fit(run, "--ckpt_path", "last", "--max_iterations", "4")
    assert keep.read_text() == "mine\n" and outside.read_text() == "mine\n"
    assert load(ckpts / "last.ckpt")["genmodels"]["iteration"] == 4


def _resume_warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("genmodels: warning: resuming")]


@pytest.mark.slow  # three tiny fits
def test_resuming_with_a_changed_precision_says_so_in_one_line_also_from_a_copied_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    _fit(run, "--max_iterations", "2")
    copied = shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "copied.ckpt")  # a checkpoint without its run
    capsys.readouterr()
    _fit(run, "--ckpt_path", "last", "--max_iterations", "3", "--trainer.precision", "bf16-mixed")
    assert _resume_warnings(capsys) == [
        f"genmodels: warning: resuming {run} with a changed trainer.precision: '32-true' -> 'bf16-mixed'"]
    assert load(run / "checkpoints" / "last.ckpt")["genmodels"]["iteration"] == 3
    # Into another run directory there is no run config to compare with: the checkpoint's record says it.
    elsewhere = tmp_path / "elsewhere"
    _fit(elsewhere, "--ckpt_path", str(copied), "--max_iterations", "3", "--trainer.precision", "bf16-mixed")
    assert _resume_warnings(capsys) == [
        f"genmodels: warning: resuming {elsewhere} with a changed trainer.precision: '32-true' -> 'bf16-mixed'"]


@pytest.mark.slow  # three tiny fits and a refused launch
def test_resuming_with_a_changed_dataset_says_so_in_one_line_and_a_changed_image_shape_is_refused(tmp_path, capsys):
    from PIL import Image

    run = tmp_path / "run"
    _fit(run, "--max_iterations", "2")
    copied = shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "copied.ckpt")
    capsys.readouterr()
    subset = ["--data", "datamodules.ClassSubsetDataModule", "--data.init_args.dataset", "DigitsDataModule",
              "--data.init_args.classes", "[0, 1]", "--data.init_args.image_size", "16"]
    changed = "with a changed data.class_path: 'datamodules.DigitsDataModule' -> 'datamodules.ClassSubsetDataModule'"
    # One line for the new dataset class, not one per argument the two classes do not share.
    _fit(run, "--ckpt_path", "last", "--max_iterations", "3", *subset)
    assert _resume_warnings(capsys) == [f"genmodels: warning: resuming {run} {changed}"]
    elsewhere = tmp_path / "elsewhere"
    _fit(elsewhere, "--ckpt_path", str(copied), "--max_iterations", "3", *subset)
    assert _resume_warnings(capsys) == [f"genmodels: warning: resuming {elsewhere} {changed}"]
    # A dataset of another image shape cannot train these networks: refused, nothing written.
    for k in range(4):
        (tmp_path / "rgb" / "a").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (60 * k, 0, 0)).save(tmp_path / "rgb" / "a" / f"{k}.png")
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    message = _refused(capsys, run, "--ckpt_path", "last", "--max_iterations", "4", "--data", "datamodules.ImageFolderDataModule",
                       "--data.init_args.data_dir", str(tmp_path / "rgb"), "--data.init_args.image_size", "16",
                       "--data.init_args.batch_size", "4", "--data.init_args.val_fraction", "0")
    assert "changes the networks" in message and "image_shape: [1, 16, 16] -> [3, 16, 16]" in message
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before
