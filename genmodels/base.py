"""Base classes every genmodels model builds on.

`GenerativeModel` fixes the contract shared by callbacks, metrics, scripts and apps:
``sample(n, *, condition=None, generator=None)`` returns ``(n, C, H, W)`` images in [-1, 1].
It also owns what "resume everything" needs beyond Lightning's own state: the ``iteration``
counter (one per training batch, whatever the number of optimizers), the RNG states of every
rank, and a record of which model class wrote the checkpoint.

The GAN training loop on top of it is `genmodels.gans.adversarial.AdversarialModel`.
"""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from genmodels.compat import has_trainer, logger_will_write
from genmodels.errors import UserError, InvalidValue


__all__ = ["GenerativeModel", "CheckpointMismatchError", "check_checkpoint_class", "rng_record_problem",
           "training_iteration"]


class CheckpointMismatchError(ValueError, UserError):
    """A checkpoint was written by another model class than the one being restored."""


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------------------------
# RNG state as plain tensors and ints, so checkpoints stay loadable with `weights_only=True`.


def _capture_host_rng() -> dict[str, Any]:
    version, py_state, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
    }


def _restore_host_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["gauss"]))


def _capture_torch_rng() -> Tensor:
    """CPU and CUDA generator states of this process, concatenated into one uint8 tensor."""
    states = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.append(torch.cuda.get_rng_state())
    return torch.cat(states)


def _restore_torch_rng(state: Tensor) -> None:
    cpu_size = torch.get_rng_state().numel()
    torch.set_rng_state(state[:cpu_size].clone())
    if state.numel() > cpu_size and torch.cuda.is_available():
        torch.cuda.set_rng_state(state[cpu_size:].clone())


# A CUDA (Philox) generator state is a seed and an offset, 8 bytes each; 8 alone is the older format.
_CUDA_RNG_STATE_SIZES = (0, 8, 16)


def rng_record_problem(meta: dict[str, Any]) -> Optional[str]:
    """What is wrong with a checkpoint's recorded RNG states, or None when every one can be restored.

    Checked on scratch generators before a resume starts, so a truncated or edited state is refused
    in one line instead of failing inside ``on_train_start`` after the run has begun.
    """
    states = meta.get("torch_rng")
    if not isinstance(states, (list, tuple)) or not states:
        return "no RNG states are recorded"
    cpu_size = torch.get_rng_state().numel()
    for rank, state in enumerate(states):
        if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.dim() != 1:
            return f"RNG state {rank} is not a 1-D byte tensor"
        extra = state.numel() - cpu_size
        if extra < 0 or extra not in _CUDA_RNG_STATE_SIZES:
            return f"RNG state {rank} has {state.numel()} bytes, not the {cpu_size} of a CPU generator (+ 8 or 16 for CUDA)"
        try:
            torch.Generator().set_state(state[:cpu_size].clone())
        except (RuntimeError, TypeError, ValueError) as err:
            return f"RNG state {rank} is not a CPU generator state ({str(err).splitlines()[0]})"
    host = meta.get("host_rng")
    if host is None:  # checkpoints of older versions hold no host state; the resume keeps the seeded one
        return None
    unusable = (KeyError, TypeError, ValueError, IndexError, AttributeError)
    try:
        py = host["python"]
        random.Random().setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    except unusable as err:
        return f"the Python RNG state is unusable ({type(err).__name__}: {err})"
    try:
        npy = host["numpy"]
        keys = npy["keys"]
        if not isinstance(keys, Tensor) or tuple(keys.shape) != (624,):  # MT19937's key is 624 words
            return f"the NumPy RNG state's key has shape {tuple(getattr(keys, 'shape', ()))}, not MT19937's (624,)"
        np.random.RandomState().set_state((npy["kind"], keys.numpy().astype(np.uint32), npy["pos"],
                                           npy["has_gauss"], npy["gauss"]))
    except unusable as err:
        return f"the NumPy RNG state is unusable ({type(err).__name__}: {err})"
    return None


# ---------------------------------------------------------------------------------------------


class GenerativeModel(pl.LightningModule):
    """A LightningModule that can draw images.

    Args:
        image_shape: ``(C, H, W)`` of the images; linked from the datamodule by the CLI.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 32, 32)) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise InvalidValue(f"image_shape must be (C, H, W) with positive sizes, got {image_shape}")
        self.image_shape = tuple(int(s) for s in image_shape)
        # One per training batch, whatever the number of optimizers (trainer.global_step counts
        # optimizer steps, so it advances twice per batch for G + D). Saved in checkpoints.
        self.iteration = 0
        self._rng_to_restore: Optional[list[Tensor]] = None
        self._host_rng_to_restore: Optional[dict[str, Any]] = None

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Constructor arguments of a test-size instance; every model defines its own (last in its class).

        One place for them: the docstring examples, the contract test (tests/genmodels/test_contract.py)
        and the CLI tests (tests/cli/common.py: `tiny_args`) build their small models from here.
        """
        raise NotImplementedError(f"{cls.__name__} defines no tiny() configuration")

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``n`` images, ``(n, C, H, W)`` in [-1, 1]; ``generator`` makes it reproducible."""
        raise NotImplementedError

    # -- the iteration counter for single-optimizer models --------------------------------------
    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # Automatic optimization calls this once per (accumulated) step; callbacks then see the new
        # count in on_train_batch_end. Manual-optimization models count in training_step.
        super().optimizer_step(*args, **kwargs)
        self.iteration += 1

    def log_train(self, logs: dict[str, Tensor]) -> None:
        """Log training scalars with ``iteration`` (the x-axis), only when Lightning will write them."""
        if logger_will_write(self.trainer):
            self.log_dict(dict(logs, iteration=float(self.iteration)), on_step=True, on_epoch=False, logger=True)

    # -- distributed seeding ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        # seed_everything gives every rank the same seed; give each rank its own noise stream so
        # DDP does not train on world_size copies of the same latent batch.
        if self.trainer.world_size > 1 and self._rng_to_restore is None:
            torch.manual_seed(torch.initial_seed() + self.global_rank)

    def on_train_start(self) -> None:
        # Restored here (not in on_load_checkpoint) so nothing between the restore and the first
        # resumed batch (sanity validation, dataloader setup) can advance the generators.
        if self._rng_to_restore is not None:
            states = self._rng_to_restore
            _restore_torch_rng(states[self.global_rank] if len(states) > self.global_rank else states[0])
            if self._host_rng_to_restore is not None:
                _restore_host_rng(self._host_rng_to_restore)
            self._rng_to_restore = self._host_rng_to_restore = None

    # -- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs on every rank (dump_checkpoint is collective), so the RNG states can be gathered.
        torch_rng = _capture_torch_rng()
        if self.trainer is not None and self.trainer.world_size > 1:
            gathered = self.trainer.strategy.all_gather(torch_rng.to(self.device))
            per_rank = [g.cpu() for g in gathered.unbind(0)]
        else:
            per_rank = [torch_rng]
        checkpoint["genmodels"] = {
            "model_class": _qualified_name(type(self)),
            "iteration": self.iteration,
            "torch_rng": per_rank,
            "host_rng": _capture_host_rng(),
        }
        if has_trainer(self):  # compared on a resume that has no run config to compare with
            checkpoint["genmodels"]["precision"] = str(self.trainer.precision)
        if isinstance(checkpoint.get("state_dict"), dict):  # checked at load (genmodels.checkpoints.verify_weights)
            checkpoint["genmodels"]["weights_sha256"] = weights_digest(checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_checkpoint_class(checkpoint, type(self))
        meta = checkpoint["genmodels"]
        problem = rng_record_problem(meta)  # the CLI refuses this before the run starts; this guards direct Trainer use
        if problem is not None:
            raise InvalidValue(f"the checkpoint cannot resume its random streams: {problem}")
        self.iteration = int(meta["iteration"])
        self._rng_to_restore = list(meta["torch_rng"])
        self._host_rng_to_restore = meta.get("host_rng")


def weights_digest(state_dict: dict[str, Any]) -> dict[str, str]:
    """A short SHA-256 of each tensor's bytes, written at save and checked at load (one per key, so a
    mismatch names the tensor)."""
    import hashlib

    digests = {}
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            digests[key] = hashlib.sha256(data.tobytes()).hexdigest()[:16]
    return digests


def check_checkpoint_class(checkpoint: dict[str, Any], model_class: type) -> None:
    """Raise a clear error unless ``checkpoint`` was written by ``model_class``."""
    meta = checkpoint.get("genmodels") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or "model_class" not in meta:
        raise CheckpointMismatchError(
            "this file is not a genmodels training checkpoint (no 'genmodels' section); "
            "resume only from checkpoints written by `genmodels fit`"
        )
    expected = _qualified_name(model_class)
    if meta["model_class"] != expected:
        raise CheckpointMismatchError(
            f"the checkpoint was written by {meta['model_class']} but the config builds {expected}; "
            "use the experiment config that produced the checkpoint, or another --ckpt_path"
        )


def training_iteration(trainer: pl.Trainer) -> int:
    """The run's iteration: a `GenerativeModel`'s ``iteration`` (batches, however many optimizer
    steps each takes), Lightning's ``global_step`` for any other LightningModule."""
    module = trainer.lightning_module
    return int(module.iteration) if isinstance(module, GenerativeModel) else int(trainer.global_step)
