"""Preemption and Ctrl-C: on SIGUSR1, SIGTERM, SIGHUP or SIGINT, finish the batch, save ``last.ckpt``, stop.

The handlers are installed before the run starts (`Preemption.arm`, called by ``genmodels fit``
before the W&B run and the data setup); a signal that arrives before the first training step stops
the run without a checkpoint (there is nothing new to save), requeues it under SLURM and says so.

SLURM sends ``--signal=SIGUSR1@90`` some seconds before the time limit and SIGTERM on
preemption. Lightning's own handlers either save an ``hpc_ckpt`` from inside the signal handler
(possibly mid-step) or raise ``SIGTERMException`` without saving. Here the handler only records
the signal; at the end of the current batch every rank agrees to stop (one tiny all-reduce, so
no rank is left waiting in a collective), `IterationCheckpoint` writes ``last.ckpt`` at that batch
boundary (so the resumed run equals an uninterrupted one), and under SLURM rank 0 requeues the
job with ``scontrol requeue``. The requeued job runs the same command with ``--ckpt_path last``
and continues the same W&B run.

Ctrl-C (SIGINT) is handled the same way, without the requeue: the first one stops at the end of
the batch with ``last.ckpt`` (``genmodels fit`` then exits with status 130); a second one aborts
at once (KeyboardInterrupt, which Lightning turns into an immediate shutdown).
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_warn

from genmodels.base import training_iteration

__all__ = ["Preemption", "PreemptedBeforeStart"]

#: SIGHUP (the terminal or the login session went away) is handled like SIGTERM.
SIGNALS = ("SIGUSR1", "SIGTERM", "SIGHUP", "SIGINT")


class Preemption(pl.Callback):
    """Turn SIGUSR1/SIGTERM/SIGINT into a clean stop with a checkpoint (and a SLURM requeue).

    Args:
        requeue: call ``scontrol requeue $SLURM_JOB_ID`` after the save when running under SLURM
            (not after Ctrl-C: the user stopped the run).
    """

    def __init__(self, requeue: bool = True) -> None:
        self.requeue = requeue
        self.received: Optional[int] = None
        self.preempted_at: Optional[int] = None
        self.requeued = False
        self.interrupted = False  # stopped by Ctrl-C rather than by the scheduler
        self._previous: dict[int, Any] = {}

    def arm(self) -> None:
        """Install the handlers: ``genmodels fit`` calls this before ``trainer.fit``, so before the W&B run
        starts and before the data's setup (a signal there is kept, not fatal)."""
        if self._previous:
            return
        self.received = self.preempted_at = None
        self.interrupted = False
        for name in SIGNALS:
            # getattr: SIGUSR1 does not exist on Windows.
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                self._previous[signum] = signal.signal(signum, self._record)
            except ValueError:  # not the main thread: leave signals to the launcher
                return

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.arm()  # a Trainer used without the CLI
        for signum in self._previous:  # Lightning's signal connector replaced SIGTERM's handler in fit: take it back
            if signal.getsignal(signum) != self._record:
                signal.signal(signum, self._record)
        stop = self.received is not None and self.received != signal.SIGINT
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            # Nothing was trained in this launch: the checkpoint it resumed from (or none) is the state.
            self.requeued = bool(self.requeue and trainer.is_global_zero and _slurm_requeue())
            raise PreemptedBeforeStart(self.requeued)

    def _record(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now, without waiting for the batch
        # Otherwise only record: saving from inside a signal handler is unsafe.
        if self.received is None or signum == signal.SIGINT:
            self.received = signum

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # getattr: only AdversarialModel accumulates micro-batches; any LightningModule may be trained.
        if getattr(pl_module, "_micro_batches", None):
            return  # in the middle of an accumulated update: stop at its end
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and self.preempted_at is None:
            self.preempted_at = training_iteration(trainer)
            self.interrupted = self.received == signal.SIGINT
            what = "Ctrl-C" if self.interrupted else "preemption signal"
            rank_zero_info(f"{what} received: stopping after iteration {self.preempted_at} with a checkpoint"
                           + (" (press Ctrl-C again to abort without it)" if self.interrupted else ""))
            trainer.should_stop = True  # IterationCheckpoint (ordered after us) saves last.ckpt now

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._restore_handlers()
        if self.preempted_at is not None and self.requeue and not self.interrupted and trainer.is_global_zero:
            self.requeued = _slurm_requeue()

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        self._restore_handlers()  # a failed run must not leave Ctrl-C disarmed in this process


class PreemptedBeforeStart(Exception):
    """A preemption signal arrived before the first training step: stop without a checkpoint."""

    def __init__(self, requeued: bool) -> None:
        super().__init__("preempted before the first training step")
        self.requeued = requeued


def _slurm_requeue() -> bool:
    job_id = os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = (
        f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job_id else os.environ.get("SLURM_JOB_ID")
    )
    if not job_id:
        return False
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        rank_zero_warn(f"could not requeue SLURM job {job_id}: {err}")
        return False
    if result.returncode != 0:
        rank_zero_warn(f"scontrol requeue {job_id} failed: {result.stderr.strip()}")
        return False
    rank_zero_info(f"requeued SLURM job {job_id}")
    return True
