"""Opening checkpoints that may come from someone else.

``torch.load`` unpickles, and unpickling runs code: every checkpoint a command or app opens goes
through `load_checkpoint_safely` (``weights_only=True``: tensors and plain containers only), and a
model is rebuilt from a checkpoint only if its recorded class is a `GenerativeModel` defined in an
allowed package (by default ``genmodels``), so a crafted file cannot make us import arbitrary code.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Union

import torch

from genmodels.base import GenerativeModel
from genmodels.errors import UserError

__all__ = ["CheckpointError", "load_checkpoint_safely", "load_model", "model_class_of"]

PathLike = Union[str, os.PathLike]


class CheckpointError(RuntimeError, UserError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or of another model."""


def load_checkpoint_safely(path: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and turn every failure into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        unsafe = "weights_only" in str(err) or "Unsupported global" in str(err)
        reason = (
            "it contains arbitrary Python objects, which are not unpickled from files that may come from others"
            if unsafe
            else f"it is not a readable PyTorch checkpoint (truncated or corrupt?): {type(err).__name__}: {err}"
        )
        raise CheckpointError(f"refusing to load {path}: {reason}") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (got a {type(checkpoint).__name__})")
    return checkpoint


def model_class_of(checkpoint: dict[str, Any], allowed_packages: tuple[str, ...] = ("genmodels",)) -> type:
    """The `GenerativeModel` subclass that wrote ``checkpoint``, imported only from allowed packages."""
    meta = checkpoint.get("genmodels")
    if not isinstance(meta, dict) or not isinstance(meta.get("model_class"), str):
        raise CheckpointError("not a genmodels checkpoint (no 'genmodels' section naming the model class)")
    module_name, _, class_name = meta["model_class"].rpartition(".")
    if not any(module_name == p or module_name.startswith(p + ".") for p in allowed_packages):
        raise CheckpointError(
            f"the checkpoint names model class {meta['model_class']!r}, outside the allowed packages "
            f"{allowed_packages}; pass allowed_packages to trust it"
        )
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise CheckpointError(f"{meta['model_class']!r} is not a genmodels GenerativeModel")
    return cls


def load_model(
    path: PathLike, map_location: Any = "cpu", allowed_packages: tuple[str, ...] = ("genmodels",)
) -> GenerativeModel:
    """Rebuild the model of a training checkpoint (hyperparameters + weights), in eval mode."""
    checkpoint = load_checkpoint_safely(path, map_location=map_location)
    cls = model_class_of(checkpoint, allowed_packages)
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
    model = cls(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.iteration = int(checkpoint["genmodels"].get("iteration", 0))
    return model.eval()
