"""Base classes every genmodels model builds on.

`GenerativeModel` fixes the contract shared by callbacks, metrics, scripts and apps:
``sample(n, *, condition=None, generator=None)`` returns ``(n, C, H, W)`` images in [-1, 1].
It also owns what "resume everything" needs beyond Lightning's own state: the ``iteration``
counter (one per training batch, whatever the number of optimizers), the RNG states of every
rank, and a record of which model class wrote the checkpoint.

`AdversarialModel` owns the manual-optimization loop of a GAN once, so a subclass writes only its
losses (Goodfellow et al. 2014, arXiv:1406.2661, Algorithm 1): ``n_critic`` discriminator
updates per generator update, each update toggled so no gradient leaks between the players,
fakes generated once per batch and detached for the discriminator, gradient clipping applied
after AMP unscaling, and per-iteration LR schedulers stepped only when their optimizer stepped.
"""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

__all__ = ["GenerativeModel", "AdversarialModel", "CheckpointMismatchError"]


class CheckpointMismatchError(ValueError):
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


# ---------------------------------------------------------------------------------------------


class GenerativeModel(pl.LightningModule):
    """A LightningModule that can draw images.

    Args:
        image_shape: ``(C, H, W)`` of the images; linked from the datamodule by the CLI.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 32, 32)) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape}")
        self.image_shape = tuple(int(s) for s in image_shape)
        # One per training batch, whatever the number of optimizers (trainer.global_step counts
        # optimizer steps, so it advances twice per batch for G + D). Saved in checkpoints.
        self.iteration = 0
        self._rng_to_restore: Optional[list[Tensor]] = None
        self._host_rng_to_restore: Optional[dict[str, Any]] = None

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``n`` images, ``(n, C, H, W)`` in [-1, 1]; ``generator`` makes it reproducible."""
        raise NotImplementedError

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

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_checkpoint_class(checkpoint, type(self))
        meta = checkpoint["genmodels"]
        self.iteration = int(meta["iteration"])
        self._rng_to_restore = list(meta["torch_rng"])
        self._host_rng_to_restore = meta.get("host_rng")


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


# ---------------------------------------------------------------------------------------------


class AdversarialModel(GenerativeModel):
    """The GAN training loop, written once.

    A subclass provides ``generator`` and ``discriminator`` modules, ``generate(batch)`` and the
    two losses; this class does the optimization (Goodfellow et al. 2014, Algorithm 1):

    1. draw fakes once per batch;
    2. update D on real and detached fakes (every batch);
    3. every ``n_critic``-th batch, update G through D on the same fakes.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        n_critic: discriminator updates per generator update (each on its own real batch).
        grad_clip_norm: clip each player's gradient norm to this value (after AMP unscaling);
            the Trainer's ``gradient_clip_val`` does not apply under manual optimization.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        n_critic: int = 1,
        grad_clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(image_shape)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if grad_clip_norm is not None and grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be positive or null, got {grad_clip_norm}")
        self.n_critic = n_critic
        self.grad_clip_norm = grad_clip_norm
        self.automatic_optimization = False
        # Validation noise comes from its own generator so evaluation never advances the training
        # RNG stream (a resumed run must see the same noise as an uninterrupted one).
        self._val_seed = 1234

    # -- what a subclass writes ---------------------------------------------------------------
    generator: nn.Module
    discriminator: nn.Module

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """Fakes for one batch, shaped like ``batch["image"]``."""
        raise NotImplementedError

    def discriminator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss on real ``batch`` and detached ``fake``; returns (loss, extra logs)."""
        raise NotImplementedError

    def generator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss for ``fake`` (with graph); returns (loss, extra logs)."""
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        _require_unused_parameter_handling(self.trainer)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        update_generator = (self.iteration + 1) % self.n_critic == 0

        # 1. Fakes once per batch; keep G's graph only when G is updated on them.
        with torch.set_grad_enabled(update_generator):
            fake = self.generate(batch)

        # 2. Discriminator step on real and detached fakes.
        loss_d, logs = self._update(opt_d, lambda: self.discriminator_loss(batch, fake.detach()))
        logs["train/loss_d"] = loss_d

        # 3. Generator step through the updated D.
        if update_generator:
            loss_g, logs_g = self._update(opt_g, lambda: self.generator_loss(batch, fake))
            logs.update(logs_g, **{"train/loss_g": loss_g})

        self.iteration += 1
        self._log_train(logs)

    def _update(self, optimizer: Any, compute_loss: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """One toggled zero_grad / backward / step of ``optimizer`` and its LR schedulers."""
        with self.toggled_optimizer(optimizer):
            loss, logs = compute_loss()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            scale_before = self._amp_scale()
            optimizer.step()  # clipping happens in on_before_optimizer_step, after unscaling
        if not self._amp_skipped_step(scale_before):
            self._step_schedulers(optimizer)
        return loss.detach(), {k: v.detach() for k, v in logs.items()}

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Under 16-mixed Lightning unscales the gradients just before this hook, so the clip acts
        # on true gradient norms.
        if self.grad_clip_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip_norm, gradient_clip_algorithm="norm")

    def _amp_scale(self) -> Optional[float]:
        """The fp16 GradScaler's scale, read only when a schedule depends on it (host sync)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is None or not scaler.is_enabled() or not self.trainer.lr_scheduler_configs:
            return None
        return scaler.get_scale()

    def _amp_skipped_step(self, scale_before: Optional[float]) -> bool:
        # GradScaler skips a step with inf/NaN gradients and lowers its scale; the schedule must
        # not advance for a step that did not happen.
        return scale_before is not None and self.trainer.precision_plugin.scaler.get_scale() < scale_before

    def _step_schedulers(self, optimizer: Any) -> None:
        # Manual optimization never steps schedulers; step per iteration those that belong to the
        # optimizer that just stepped.
        raw = getattr(optimizer, "optimizer", optimizer)
        for config in self.trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is raw:
                config.scheduler.step()

    def _log_train(self, logs: dict[str, Tensor]) -> None:
        # Logging every batch costs a host sync per value; log only when Lightning will write.
        if not _logger_will_write(self.trainer):
            return
        logs = dict(logs, iteration=float(self.iteration))
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, logger=True)

    # -- evaluation of the two players --------------------------------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        generator = torch.Generator(device=self.device).manual_seed(self._val_seed + batch_idx)
        fake = self.generate(batch, generator=generator)
        d_real, d_fake = self.discriminator_scores(batch, fake)
        n = batch["image"].shape[0]
        self.log_dict({f"{stage}/d_real": d_real, f"{stage}/d_fake": d_fake}, batch_size=n, sync_dist=True)

    def discriminator_scores(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, Tensor]:
        """Mean D output on real and fake images (probabilities for BCE models)."""
        raise NotImplementedError


def _logger_will_write(trainer: pl.Trainer) -> bool:
    connector = getattr(trainer, "_logger_connector", None)
    should = getattr(connector, "should_update_logs", None)
    return bool(trainer.loggers) and (should is None or bool(should))


def _require_unused_parameter_handling(trainer: pl.Trainer) -> None:
    """Fail fast on DDP without unused-parameter handling.

    Lightning wraps G and D in one DistributedDataParallel, and each of the two backward passes
    of a GAN step leaves the other player's parameters without gradients; DDP without
    ``find_unused_parameters`` would hang or raise deep inside the reducer at the next step.
    """
    strategy = trainer.strategy
    ddp_kwargs = getattr(strategy, "_ddp_kwargs", None)
    if ddp_kwargs is None or trainer.world_size < 2:
        return
    if not ddp_kwargs.get("find_unused_parameters", False):
        raise pl.utilities.exceptions.MisconfigurationException(
            "adversarial models update G and D with separate backward passes, so each pass leaves "
            "the other network's parameters unused; run DDP with "
            "`--trainer.strategy ddp_find_unused_parameters_true`"
        )
