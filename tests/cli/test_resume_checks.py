"""What a resume may and may not change: checkpoint.dirpath, changed options, diverged runs, a damaged
RNG record, a full disk.

Before (issue #27): a checkpoint with a short RNG state resumed into a traceback from
``torch.set_rng_state`` after the run had started (and left an empty run folder behind).
"""

import errno
import hashlib
import os
import resource
from pathlib import Path

import pytest
import torch

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, TINY, TINY_DCGAN, fit, load

DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "64",
          "--checkpoint.every_n_iterations", "2", "--sample_grid.every_n_iterations", "0"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fails(capsys, run: Path, *extra: str) -> str:
    with pytest.raises(SystemExit) as exc:
        fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, *extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("genmodels: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.slow  # two or three tiny fits
def test_resume_finds_last_ckpt_in_checkpoint_dirpath(capsys, tmp_path):
    ckpts = tmp_path / "shared" / "ckpts"
    fit("dcgan/digits.yaml", tmp_path / "run", *TINY_DCGAN, *DIGITS, "--checkpoint.dirpath", str(ckpts), "--max_iterations", "2")
    assert load(ckpts / "last.ckpt")["genmodels"]["iteration"] == 2
    before = _digest(ckpts / "last.ckpt")
    # A fresh launch writing into that folder would overwrite it: refused, whatever the run directory.
    message = _fails(capsys, tmp_path / "other", "--checkpoint.dirpath", str(ckpts), "--max_iterations", "2")
    assert str(ckpts) in message and "--ckpt_path last" in message
    assert _digest(ckpts / "last.ckpt") == before
    # The requeued command resumes from it and continues the count (a restart would also end at 4
    # iterations, but with a run of 4 fresh ones: the optimizer's step counter tells them apart).
    fit("dcgan/digits.yaml", tmp_path / "run", *TINY_DCGAN, *DIGITS, "--checkpoint.dirpath", str(ckpts),
        "--max_iterations", "3", "--ckpt_path", "last")
    resumed = load(ckpts / "last.ckpt")
    assert resumed["genmodels"]["iteration"] == 3
    assert {float(s["step"]) for s in resumed["optimizer_states"][0]["state"].values()} == {3.0}
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow  # two or three tiny fits
def test_changed_options_on_resume_are_applied_or_refused_never_ignored(capsys, tmp_path):
    run = tmp_path / "run"
    fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, "--max_iterations", "2")
    last = run / "checkpoints" / "last.ckpt"
    before = _digest(last)

    # A change of the networks' shapes cannot use these weights: refused, naming the key.
    message = _fails(capsys, run, "--ckpt_path", "last", "--max_iterations", "4", "--model.init_args.feature_maps", "8")
    assert "feature_maps: 4 -> 8" in message and "changes the networks" in message
    assert _digest(last) == before and not (run / "config.resume-1.yaml").exists()

    # A change of the loss or the optimizer is applied, announced and recorded.
    fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, "--ckpt_path", "last", "--max_iterations", "4",
        "--model.init_args.label_smoothing", "0.1", "--model.init_args.lr_g", "0.0001")
    err = capsys.readouterr().err
    assert "label_smoothing: 0.0 -> 0.1" in err and "lr_g: 0.0002 -> 0.0001" in err
    resumed = load(last)
    assert resumed["genmodels"]["iteration"] == 4
    assert resumed["hyper_parameters"]["label_smoothing"] == 0.1
    g, d = (state["param_groups"][0] for state in resumed["optimizer_states"])
    assert (g["lr"], d["lr"]) == (0.0001, 0.0002)  # the restored state did not put 2e-4 back
    assert {float(s["step"]) for s in resumed["optimizer_states"][0]["state"].values()} == {4.0}  # moments kept
    recorded = (run / "config.resume-1.yaml").read_text()
    assert "label_smoothing: 0.1" in recorded and "lr_g: 0.0001" in recorded
    assert "label_smoothing: 0.0" in (run / "config.yaml").read_text()


@pytest.mark.slow  # two or three tiny fits
def test_a_diverged_run_stops_and_never_checkpoints_non_finite_weights(capsys, tmp_path):
    run = tmp_path / "run"
    fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, "--max_iterations", "2")
    last = run / "checkpoints" / "last.ckpt"
    before = _digest(last)
    # The same run resumed with an absurd learning rate (applied on resume, see above) diverges.
    message = _fails(capsys, run, "--ckpt_path", "last", "--max_iterations", "40",
                     "--model.init_args.lr_g", "1e30", "--model.init_args.lr_d", "1e30")
    assert "training diverged at iteration" in message and "is not finite" in message
    assert f"the checkpoint this run resumed from, {last}, is kept" in message
    assert _digest(last) == before
    for path in (run / "checkpoints").glob("*.ckpt"):
        state = load(path)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path.name
        assert load(path)["genmodels"]["iteration"] == 2


def test_a_run_that_diverges_from_the_start_writes_no_checkpoint(capsys, tmp_path):
    run = tmp_path / "run"
    message = _fails(capsys, run, "--max_iterations", "40", "--model.init_args.lr_g", "1e30", "--model.init_args.lr_d", "1e30")
    assert "training diverged at iteration" in message and "no checkpoint was written" in message
    assert not list(run.glob("checkpoints/*.ckpt"))


@pytest.mark.slow  # two tiny fits
def test_a_checkpoint_written_before_an_option_resumes_as_the_model_of_its_time(capsys, tmp_path):
    """A RealNVP checkpoint without ``coupling_network`` (written before the option, and so before
    ``flow_batch_norm`` and ``ordered_squeeze``) holds the plain network: resuming it with the
    config's default (the authors' networks) is refused naming 'plain' -> 'authors', and resuming
    with the values of its time announces no change."""
    from genmodels import RealNVP
    from tests.cli.common import model_tiny_args

    run = tmp_path / "run"
    args = [*model_tiny_args(RealNVP), "--data.init_args.image_size", "16", "--data.init_args.batch_size", "16",
            "--checkpoint.every_n_iterations", "2", "--sample_grid.every_n_iterations", "0"]
    old = ["--model.init_args.flow_batch_norm", "false", "--model.init_args.ordered_squeeze", "false"]
    fit("realnvp/digits.yaml", run, *args, "--max_iterations", "2", "--model.init_args.coupling_network", "plain", *old)
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = load(last)
    for option in ("coupling_network", "flow_batch_norm", "ordered_squeeze"):  # as written before the options existed
        del checkpoint["hyper_parameters"][option]
    torch.save(checkpoint, last)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        fit("realnvp/digits.yaml", run, *args, "--max_iterations", "3", "--ckpt_path", "last")
    assert exc.value.code == 2
    assert "coupling_network: 'plain' -> 'authors'" in capsys.readouterr().err
    fit("realnvp/digits.yaml", run, *args, "--max_iterations", "3", "--ckpt_path", "last",
        "--model.init_args.coupling_network", "plain", *old)
    err = capsys.readouterr().err
    assert "coupling_network" not in err and "flow_batch_norm" not in err and "ordered_squeeze" not in err
    assert load(last)["genmodels"]["iteration"] == 3


@pytest.mark.slow  # one tiny fit (~10 s under load); each refusal is a parse
@pytest.mark.parametrize("what", ["short torch state", "short NumPy key"])
def test_a_checkpoint_with_a_short_rng_state_is_refused_in_one_line_before_the_run_starts(capsys, tmp_path, what):
    fit("dcgan/digits.yaml", tmp_path / "run", *TINY_DCGAN, *DIGITS, "--max_iterations", "2")
    checkpoint = load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    record = checkpoint["genmodels"]
    if what == "short torch state":
        record["torch_rng"] = [state[:100] for state in record["torch_rng"]]
    else:
        record["host_rng"]["numpy"]["keys"] = record["host_rng"]["numpy"]["keys"][:10]
    damaged = tmp_path / "damaged.ckpt"
    torch.save(checkpoint, damaged)
    before = _digest(damaged)
    capsys.readouterr()
    message = _fails(capsys, tmp_path / "resumed", "--ckpt_path", str(damaged), "--max_iterations", "4")
    assert f"{damaged}: cannot resume its random streams" in message
    assert ("has 100 bytes" if what == "short torch state" else "key has shape (10,)") in message
    assert _digest(damaged) == before
    assert not (tmp_path / "resumed").exists()  # refused before the run began: no folder, no W&B run


def _full_disk_at_fsync(monkeypatch) -> None:
    """ENOSPC when a checkpoint's temp file is flushed: where delayed allocation, NFS and quotas report it."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if ".ckpt.tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.slow  # two tiny fits (~15 s under load)
@pytest.mark.parametrize("how", ["ENOSPC at fsync", "file size limit mid-write"])
def test_a_full_disk_during_fit_keeps_the_previous_checkpoint_and_is_one_line(capsys, tmp_path, monkeypatch, how):
    run = tmp_path / "run"
    fit("dcgan/digits.yaml", run, *TINY_DCGAN, *DIGITS, "--max_iterations", "2", "--trainer.logger", "false")
    folder = run / "checkpoints"
    before = {path.name: _digest(path) for path in folder.iterdir()}
    assert sorted(before) == ["iter_00000002.ckpt", "last.ckpt"]
    capsys.readouterr()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        if how == "ENOSPC at fsync":
            _full_disk_at_fsync(monkeypatch)
        else:
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, limits[1]))
        message = _fails(capsys, run, "--ckpt_path", "last", "--max_iterations", "4", "--trainer.logger", "false")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    words = "no space left on the device" if how == "ENOSPC at fsync" else "over the file size limit"
    assert f"cannot write {folder / 'iter_00000004.ckpt'}: {words}" in message, message
    assert "no partial file was left" in message
    assert {path.name: _digest(path) for path in folder.iterdir()} == before  # no temp file, nothing replaced
    assert load(folder / "last.ckpt")["genmodels"]["iteration"] == 2
