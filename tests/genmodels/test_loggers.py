"""The W&B logger writes where the run directory is, whatever the process's history of working directories."""

from __future__ import annotations

import os

from genmodels.loggers import WandbLogger
from tests.wandb_records import run_ids, wait_until_closed


def _one_run(save_dir: str, run_id: str) -> None:
    logger = WandbLogger(save_dir=save_dir, id=run_id, offline=True)
    logger.log_metrics({"x": 1.0})
    logger.experiment.finish()


def test_a_relative_save_dir_lands_under_the_current_directory_after_a_chdir(tmp_path, monkeypatch):
    # wandb's service process starts once per process, in the directory current at the first run;
    # a relative folder sent to it later resolved against that first directory (the sweep test's
    # transaction log went missing in CI this way).
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    monkeypatch.chdir(first)
    _one_run("run", "cwdfirst1")
    monkeypatch.chdir(second)
    _one_run("run", "cwdsecond1")
    logs = list((second / "run/wandb").glob("offline-run-*-cwdsecond1/run-cwdsecond1.wandb"))
    assert len(logs) == 1, sorted(os.listdir(second / "run/wandb"))
    wait_until_closed(logs[0])
    assert run_ids(logs[0]) == {"cwdsecond1"}
    assert not list((first / "run/wandb").glob("*cwdsecond1*"))
