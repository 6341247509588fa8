"""Test helpers over `genmodels.runs`, the reader of wandb's offline transaction logs."""

from __future__ import annotations

import time
from pathlib import Path

from genmodels.runs import wandb_history as history
from genmodels.runs import wandb_records as read_records

__all__ = ["history", "read_records", "run_ids", "wait_until_closed"]


def wait_until_closed(path: str | Path, timeout: float = 60.0) -> None:
    """Wait for the run's exit record: wandb's service may still be flushing after finish() returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.WhichOneof("record_type") == "exit" for r in read_records(path)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path} has no exit record after {timeout} s")


def run_ids(path: str | Path) -> set[str]:
    return {r.run.run_id for r in read_records(path) if r.WhichOneof("record_type") == "run"}
