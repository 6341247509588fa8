"""One W&B run per training run: Ctrl-C, resume and ``genmodels test`` read back as one history on the iteration axis."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import pytest

from genmodels.commands import main
from genmodels.runs import offline_segments
from tests.cli.common import EXPERIMENTS, TINY, TINY_DCGAN, fit, load
from tests.wandb_records import read_records, run_ids, wait_until_closed

STOP, TOTAL = 50, 100
# 1,617 digits at batch 64: 26 batches per epoch, so the stop at 50 is mid-epoch and the
# validation passes (every epoch) land at iterations 26, 52, 78 and 100's neighbours.
ARGS = [*TINY, *TINY_DCGAN, "--data.init_args.image_size", "16", "--data.init_args.batch_size", "64",
        "--trainer.log_every_n_steps", "5", "--sample_grid.every_n_iterations", "25",
        "--checkpoint.every_n_iterations", "0"]


class InterruptAt(pl.Callback):
    """Sends this process Ctrl-C (SIGINT) during the batch that makes iteration ``at``, as a user would."""

    def __init__(self, at: int = STOP) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.at - 1:
            os.kill(os.getpid(), signal.SIGINT)


def _rows(run_dir: Path) -> tuple[list[dict], list]:
    """Every history row of every segment (oldest first), with its W&B step; and the segments."""
    segments = offline_segments(run_dir)
    rows = []
    for segment in segments:
        (log,) = segment.glob("run-*.wandb")
        wait_until_closed(log)
        for record in read_records(log):
            if record.WhichOneof("record_type") == "history":
                rows.append({"_step_num": record.history.step.num, **history_row(record)})
    return rows, segments


def history_row(record) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}


@pytest.mark.slow
def test_interrupted_resumed_and_tested_run_is_one_wandb_run_on_the_iteration_axis(tmp_path: Path, capsys):
    run = tmp_path / "run"
    callback = ["--trainer.callbacks+=tests.cli.test_wandb_run.InterruptAt"]
    with pytest.raises(SystemExit) as exit:
        fit("dcgan/digits.yaml", run, *ARGS, *callback, "--max_iterations", str(TOTAL))
    assert exit.value.code == 130
    assert load(run / "checkpoints/last.ckpt")["genmodels"]["iteration"] == STOP
    fit("dcgan/digits.yaml", run, *ARGS, "--ckpt_path", "last", "--max_iterations", str(TOTAL))
    capsys.readouterr()
    main(["test", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), "--trainer.default_root_dir", str(run), *ARGS,
          "--ckpt_path", str(run / "checkpoints/last.ckpt")])
    printed = capsys.readouterr().out

    rows, segments = _rows(run)
    run_id = (run / "wandb_run_id").read_text().strip()
    assert len(segments) == 3 and all(run_ids(next(s.glob("run-*.wandb"))) == {run_id} for s in segments)
    # The sync hint names every segment, oldest first.
    assert f"genmodels sync {run}" in printed and " ".join(str(s) for s in segments) in printed

    # One history: W&B steps increase across the three launches (a sync appends, never rewinds) ...
    steps = [r["_step_num"] for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps
    # ... every row is on the iteration axis, and Lightning's global step is not logged.
    assert all("iteration" in r for r in rows), [r for r in rows if "iteration" not in r][:2]
    assert not any("trainer/global_step" in r for r in rows)
    train = [int(r["iteration"]) for r in rows if "train/loss_d" in r]
    assert train == list(range(5, TOTAL + 1, 5)), train  # every point in place, none twice, no gap at the stop
    grids = [int(r["iteration"]) for r in rows if any(k.startswith("samples") for k in r)]
    assert grids == [25, 50, 75, 100], grids
    test_rows = [r for r in rows if any(k.startswith("test/") for k in r)]
    assert test_rows and all(r["iteration"] == TOTAL for r in test_rows)
    # x-axis definitions: every key against iteration (the last "*" definition wins).
    globs = [r.metric for r in read_records(next(segments[-1].glob("run-*.wandb"))) if r.WhichOneof("record_type") == "metric"]
    star = [m for m in globs if m.glob_name == "*"]
    assert star and star[-1].step_metric == "iteration"

    # `genmodels sync RUN_DIR` uploads the three segments, oldest first.
    commands = main(["sync", str(run), "--dry-run"])
    assert [command[1:] for command in commands] == [["sync", str(s)] for s in segments]
