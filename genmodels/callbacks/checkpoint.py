"""Checkpoints sized and named by iteration, written atomically.

Lightning's ModelCheckpoint counts ``trainer.global_step``, which advances once per optimizer
step: twice per batch for G + D (4 batches -> ``step=8``). `IterationCheckpoint` counts the
model's ``iteration`` (one per batch) instead, for both the interval and the file name, and keeps
``last.ckpt`` for resuming.

Lightning's own save goes through fsspec, whose local "transaction" writes to the system temp
directory and then *moves* the file: across filesystems (node-local /tmp, checkpoints on a
shared filesystem) that is a copy, and a job killed mid-copy leaves a truncated checkpoint.
`AtomicCheckpointIO` writes next to the target, fsyncs, and renames, so the previous file stays
loadable until the new one is complete.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from genmodels.atomic import atomic_write
from genmodels.base import training_iteration
from genmodels.callbacks.nonfinite import NonFiniteError, diverged_message, first_nonfinite
from genmodels.compat import save_model_checkpoint_now
from genmodels.errors import InvalidValue

__all__ = ["IterationCheckpoint", "AtomicCheckpointIO", "remove_stale_temp_files"]

_TEMP_FILE = re.compile(r"^\..+\.tmp-(\d+)$")
_OWN_NAME = re.compile(r"^(last|iter_\d+)\.ckpt$")


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are temp file + fsync + rename in the same folder."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if "://" in str(path):  # remote storage: keep Lightning's fsspec path
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda f: torch.save(checkpoint, f))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` files that a killed save left in ``folder``; return them.

    Only files whose writer is gone: not this process, and no live process with that PID on this
    machine (a save in progress from another process on it is left alone). PIDs are per machine:
    run this where the previous job ran, or after it has ended, on a shared filesystem.
    """
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMP_FILE.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


class IterationCheckpoint(ModelCheckpoint):
    """Save ``last.ckpt`` and ``iter_XXXXXXXX.ckpt`` every ``every_n_iterations`` model iterations.

    Args:
        dirpath: where checkpoints go; default ``<trainer.default_root_dir>/checkpoints``.
        every_n_iterations: interval in iterations (batches); 0 saves only when training stops.
        keep_last_k: how many periodic checkpoints to keep (-1 keeps all, 0 keeps none and only
            ``last.ckpt`` is written).
        filename: periodic checkpoint name; ``{iteration}`` is the model's iteration.
        save_last: also maintain ``last.ckpt`` (what ``--ckpt_path last`` resumes from).
    """

    def __init__(
        self,
        dirpath: Optional[str] = None,
        every_n_iterations: int = 1000,
        keep_last_k: int = -1,
        filename: str = "iter_{iteration:08d}",
        save_last: bool = True,
    ) -> None:
        if every_n_iterations < 0:
            raise InvalidValue(f"checkpoint.every_n_iterations must be >= 0, got {every_n_iterations}")
        if keep_last_k < -1:
            raise InvalidValue(f"checkpoint.keep_last_k must be -1 (all), 0 or positive, got {keep_last_k}")
        # "Most recent k" is top-k on the iteration itself.
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor="iteration" if keep_last_k > 0 else None,
            mode="max",
            save_top_k=keep_last_k,
            save_last=save_last,
            every_n_train_steps=0,
            every_n_epochs=0,
            auto_insert_metric_name=False,
            # A resumed run overwrites last.ckpt instead of writing last-v1.ckpt beside it (a moved or
            # respelled run directory made Lightning do so, and `--ckpt_path last` then went back in time).
            enable_version_counter=False,
        )
        self.every_n_iterations = every_n_iterations
        #: The model iteration of the last checkpoint this callback wrote (None: none yet).
        self.last_saved_iteration: Optional[int] = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if trainer.is_global_zero and "://" not in str(self.dirpath):
            remove_stale_temp_files(Path(self.dirpath))
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self.every_n_iterations
        # Also save when training is about to stop (max_iterations, a preemption signal), so the
        # final state is resumable from exactly this batch.
        if (n and pl_module.iteration % n == 0) or trainer.should_stop:
            self.save_now(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.save_now(trainer)  # e.g. max_epochs reached; skipped if this step is already saved

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        pass  # iteration-driven only

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        pass  # iteration-driven only

    def save_now(self, trainer: pl.Trainer) -> None:
        save_model_checkpoint_now(self, trainer, before_save=lambda: _refuse_nonfinite(trainer))
        self.last_saved_iteration = training_iteration(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the bookkeeping as names inside the current folder, whatever folder the checkpoint names.

        Lightning keeps absolute paths and deletes the files they name when it rotates checkpoints,
        so a moved run would forget them and a crafted checkpoint could name any file. Only names
        of this callback's own checkpoints (``last.ckpt``, ``iter_N.ckpt``) that exist here are kept.
        """
        folder = Path(self.dirpath) if self.dirpath else None

        def here(name: Any) -> str:
            if folder is None or not isinstance(name, str) or not name:
                return ""
            candidate = folder / Path(name).name
            ok = _OWN_NAME.match(candidate.name) and candidate.is_file()
            return str(candidate) if ok else ""

        best_k = state_dict.get("best_k_models") or {}
        self.best_k_models = {here(k): v for k, v in best_k.items() if here(k)} if isinstance(best_k, dict) else {}
        self.kth_best_model_path = here(state_dict.get("kth_best_model_path"))
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.best_model_score = state_dict.get("best_model_score")
        self.best_model_path = here(state_dict.get("best_model_path"))
        self.last_model_path = here(state_dict.get("last_model_path"))

    def _monitor_candidates(self, trainer: pl.Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(training_iteration(trainer))
        return candidates


def _refuse_nonfinite(trainer: pl.Trainer) -> None:
    """Never overwrite a good checkpoint with non-finite weights (one host sync per save)."""
    name = first_nonfinite(trainer.lightning_module)
    if name is not None:
        iteration = training_iteration(trainer)
        raise NonFiniteError(diverged_message(iteration, f"the weight {name}", trainer))
