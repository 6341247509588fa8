"""Advice that works: each command an error message suggests is run as written, and succeeds or makes progress."""

from __future__ import annotations

import re
import shlex
import urllib.error
from pathlib import Path

import pytest

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, TINY, TINY_DCGAN

DOWNLOAD = "--data.init_args.download true"


def _error(capsys, argv: list[str]) -> str:
    """Run ``genmodels argv`` expecting one ``genmodels: error:`` line; return it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmodels: error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def offline(monkeypatch):
    """torchvision's downloads fail as they do on a compute node without network."""
    from torchvision import datasets

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    for name in ("MNIST", "FashionMNIST", "CIFAR10"):
        monkeypatch.setattr(datasets, name, refuse)


def test_check_data_download_advice_downloads_or_says_what_to_fetch_by_hand(capsys, tmp_path, offline):
    check = ["check-data", "--config", str(EXPERIMENTS / "dcgan/mnist.yaml"), "--data.init_args.data_dir", str(tmp_path)]
    advice = _error(capsys, check)
    assert f"rerun with {DOWNLOAD}" in advice
    # The suggestion, as written, in the same command: check-data now tries the download ...
    followed = _error(capsys, [*check, *shlex.split(DOWNLOAD)])
    assert "downloading MNIST failed" in followed and "name resolution" in followed
    # ... and, offline, says how to get the files by hand without suggesting the download again.
    assert DOWNLOAD not in followed and "To get them by hand" in followed and "train-images-idx3-ubyte.gz" in followed


def test_fit_with_download_offline_is_one_line_and_leaves_no_run_behind(capsys, tmp_path, offline):
    run = tmp_path / "run"
    err = _error(capsys, ["fit", "--config", str(EXPERIMENTS / "dcgan/mnist.yaml"), *TINY, *TINY_DCGAN,
                          "--data.init_args.data_dir", str(tmp_path / "data"), *shlex.split(DOWNLOAD),
                          "--trainer.default_root_dir", str(run), "--max_iterations", "2"])
    assert "downloading MNIST failed" in err and DOWNLOAD not in err
    assert not (run / "wandb_run_id").exists() and not run.exists()


@pytest.mark.slow
def test_resume_advice_of_a_refused_fresh_launch_resumes(capsys, tmp_path):
    run = tmp_path / "run"
    args = ["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, "--data.init_args.image_size",
            "16", "--trainer.default_root_dir", str(run), "--sample_grid.every_n_iterations", "0"]
    main([*args, "--max_iterations", "2"])
    advice = _error(capsys, [*args, "--max_iterations", "4"])
    suggested = re.search(r"Resume with (--ckpt_path last)", advice)
    assert suggested, advice
    main([*args, "--max_iterations", "4", *shlex.split(suggested.group(1))])
    import torch

    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["genmodels"]["iteration"] == 4
