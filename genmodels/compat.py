"""The one place that touches private APIs (PyTorch Lightning, PyTorch, torchmetrics, W&B's logger).

Those libraries offer no public way to ask some things the training loop needs. Each use is
fenced here behind a small function, and `tests/genmodels/test_compat.py` checks that the private
name still exists, so an upgrade that removes it fails loudly in the tests instead of silently
changing behaviour. `tests/test_layers.py` refuses a private name of another library anywhere else.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import WandbLogger

__all__ = [
    "logger_will_write",
    "ddp_kwargs_of",
    "batches_that_stepped",
    "has_trainer",
    "wandb_run_started",
    "wandb_run_if_started",
    "wandb_init_settings",
    "lerp_all_",
    "register_load_state_dict_pre_hook",
    "BATCH_NORM",
    "lpips_network",
    "spectral_norm_vectors",
    "numpy_pickle_globals",
    "save_model_checkpoint_now",
    "LIGHTNING_CLI_HOOKS",
    "MODEL_CHECKPOINT_HOOKS",
    "check_private_hooks",
]

# Private methods of LightningCLI that `genmodels.cli.GenerativeCLI` overrides: Lightning has no
# public hook before the checkpoint's hyperparameters replace the model config, none to add
# callbacks ahead of ModelCheckpoint, none around a subcommand. Name -> parameters after self.
LIGHTNING_CLI_HOOKS: dict[str, tuple[str, ...]] = {
    "_parse_ckpt_path": (),
    "_instantiate_trainer": ("config", "callbacks"),
    "_run_subcommand": ("subcommand",),
}

# Private methods of ModelCheckpoint that `save_model_checkpoint_now` calls and
# `genmodels.callbacks.IterationCheckpoint` overrides (``_monitor_candidates``).
MODEL_CHECKPOINT_HOOKS: dict[str, tuple[str, ...]] = {
    "_should_skip_saving_checkpoint": ("trainer",),
    "_monitor_candidates": ("trainer",),
    "_save_topk_checkpoint": ("trainer", "monitor_candidates"),
    "_save_last_checkpoint": ("trainer", "monitor_candidates"),
}


def logger_will_write(trainer: pl.Trainer) -> bool:
    """Whether Lightning writes logged values this batch (its own ``log_every_n_steps`` rule)."""
    connector = trainer._logger_connector
    return bool(trainer.loggers) and bool(connector.should_update_logs)


def ddp_kwargs_of(strategy: Any) -> Optional[dict[str, Any]]:
    """The keyword arguments a DDP strategy hands to ``DistributedDataParallel`` (None if not DDP)."""
    # getattr: a private DDPStrategy attribute, fenced here.
    return getattr(strategy, "_ddp_kwargs", None) if isinstance(strategy, pl.strategies.DDPStrategy) else None


def batches_that_stepped(trainer: pl.Trainer) -> int:
    """The step Lightning's own ``self.log`` values go to the loggers at (batches that stepped an optimizer).

    Logging extra values at this step keeps them in the same W&B row as the model's logged values.
    """
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def has_trainer(module: pl.LightningModule) -> bool:
    """Whether ``module`` is attached to a Trainer (``module.trainer`` raises when it is not)."""
    return module._trainer is not None


def wandb_run_started(logger: WandbLogger) -> bool:
    """Whether the W&B logger has started its run (``logger.experiment`` would start one)."""
    return logger._experiment is not None


def wandb_run_if_started(logger: WandbLogger) -> Any:
    """The logger's W&B run if it has started one, else None (without starting it)."""
    return logger._experiment


#: The base class of every BatchNorm layer (1d/2d/3d, SyncBatchNorm, lazy ones): torch names none publicly.
BATCH_NORM: type[torch.nn.Module] = torch.nn.modules.batchnorm._BatchNorm


def wandb_init_settings(logger: WandbLogger) -> dict[str, Any]:
    """The keyword arguments Lightning's WandbLogger will pass to ``wandb.init`` (its private
    ``_wandb_init``; there is no public way to drop one before the run starts)."""
    return logger._wandb_init


def lerp_all_(targets: list[torch.Tensor], sources: list[torch.Tensor], weight: float) -> None:
    """``t += weight * (s - t)`` for every pair, in one fused kernel per device (``torch._foreach_lerp_``)."""
    torch._foreach_lerp_(targets, sources, weight)


def register_load_state_dict_pre_hook(module: torch.nn.Module, hook: Callable[..., None]) -> None:
    """Call ``hook(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)`` before
    ``module`` loads a state dict (e.g. to resize a buffer to the checkpoint's size). torch >= 2.5
    has a public ``register_load_state_dict_pre_hook`` with another signature (module first); the
    private one takes this signature on every supported version."""
    module._register_load_state_dict_pre_hook(hook)


def spectral_norm_vectors(parametrization: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The power-iteration vectors (u, v) of a `torch.nn.utils.parametrizations.spectral_norm`
    parametrization: torch keeps them as the private buffers ``_u``, ``_v`` and offers no setter
    (the BigGAN importer writes the official run's u into them)."""
    return parametrization._u, parametrization._v


@torch.no_grad()
def official_eval_sigma_(parametrization: torch.nn.Module, weight: torch.Tensor, u: torch.Tensor) -> None:
    """Store ``u`` and a ``v`` that make PyTorch's eval-mode sigma equal ajbrock's ``layers.SN``.

    The official SN runs one power-iteration step from its stored u on every forward, eval included:
    v1 = normalize(W^T u), u1 = normalize(W v1), sigma = ||W v1||. PyTorch's eval mode reads
    sigma = u^T W v from the stored vectors, so v is set to v1 * ||W v1|| / ||W^T u``||: then
    u^T W v = ||W^T u|| * ||W v1|| / ||W^T u|| = ||W v1|| for any u, unit or not (an averaged u is not).
    """
    w = parametrization._reshape_weight_to_matrix(weight)
    u = u.reshape(-1)
    v1 = torch.nn.functional.normalize(w.t() @ u, dim=0, eps=parametrization.eps)
    scale = (w @ v1).norm() / (w.t() @ u).norm().clamp_min(parametrization.eps)
    stored_u, stored_v = spectral_norm_vectors(parametrization)
    stored_u.copy_(u)
    stored_v.copy_(v1 * scale)


def lpips_network(net: str = "vgg") -> torch.nn.Module:
    """torchmetrics' LPIPS network with its pretrained linear heads and no resizing, in eval mode:
    per-pair distances (N, 1, 1, 1), where the public metric only returns their mean."""
    from torchmetrics.functional.image.lpips import _LPIPS

    return _LPIPS(pretrained=True, net=net, resize=None).eval()


def save_model_checkpoint_now(
    callback: ModelCheckpoint, trainer: pl.Trainer, before_save: Optional[Callable[[], None]] = None
) -> None:
    """Let ``callback`` save its top-k and last checkpoints now, as Lightning does after validation.

    Skipped when Lightning would skip (this step already saved, sanity checking, fast_dev_run);
    otherwise ``before_save`` runs first and may raise to refuse the save.
    """
    if callback._should_skip_saving_checkpoint(trainer):
        return
    if before_save is not None:
        before_save()
    candidates = callback._monitor_candidates(trainer)
    callback._save_topk_checkpoint(trainer, candidates)
    callback._save_last_checkpoint(trainer, candidates)


def _check_hooks(cls: type, hooks: dict[str, tuple[str, ...]]) -> None:
    """Raise if one of the private methods ``hooks`` names is gone or takes other parameters."""
    import inspect

    for name, parameters in hooks.items():
        # getattr: checks that a private Lightning method still exists: the probe is the point.
        method = getattr(cls, name, None)
        if not callable(method):
            raise RuntimeError(f"{cls.__name__}.{name} no longer exists: update genmodels.compat for this Lightning")
        found = tuple(inspect.signature(method).parameters)[1:]
        if found != parameters:
            raise RuntimeError(f"{cls.__name__}.{name} now takes {found}, not {parameters}: update genmodels.compat")


def check_private_hooks() -> None:
    """Raise if a private Lightning method genmodels overrides or calls changed (run by the tests)."""
    _check_hooks(LightningCLI, LIGHTNING_CLI_HOOKS)
    _check_hooks(ModelCheckpoint, MODEL_CHECKPOINT_HOOKS)


def numpy_pickle_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickled numpy array needs, under the module names of numpy 1.x and 2.x: the
    allowlist of an unpickler that rebuilds arrays and nothing else (``numpy.core.multiarray._reconstruct``
    is private to numpy, but pickles name it)."""
    import codecs

    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2; importing numpy.core there warns
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar  # numpy integers, e.g. labels saved as np.int64
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(str, "latin1"): data only.
    allowed[("_codecs", "encode")] = codecs.encode
    return allowed
