"""Opening checkpoints that may come from someone else.

``torch.load`` unpickles, and unpickling runs code: every checkpoint a command or app opens goes
through `load_checkpoint_safely` (``weights_only=True``: tensors and plain containers only), and a
model is rebuilt from a checkpoint only if its recorded class is a `GenerativeModel` defined in an
allowed package (by default ``genmodels``), so a crafted file cannot make us import arbitrary code.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from genmodels.base import GenerativeModel
from genmodels.errors import UserError

__all__ = ["CheckpointError", "load_checkpoint_safely", "load_model", "model_class_of"]

PathLike = Union[str, os.PathLike]


class CheckpointError(RuntimeError, UserError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or of another model.

    ``kind`` tells them apart: ``"missing"``, ``"corrupt"`` (cannot be read: truncated, not a
    PyTorch file), ``"untrusted"`` (readable, but it holds pickled objects outside torch's
    weights-only allow-list) or ``"invalid"`` (readable, but not what was asked for).
    """

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


# What torch's weights-only unpickler says when it meets a class or function it will not import;
# any other failure (zip errors, unknown opcodes, EOF) means the bytes themselves are bad.
_UNTRUSTED = re.compile(r"unsupported global:?\s*(?:GLOBAL\s+)?([\w.]+)", re.IGNORECASE)


def _untrusted_global(err: Exception) -> Optional[str]:
    """The pickled global that torch refused, if that is why loading failed."""
    text = str(err)
    match = _UNTRUSTED.search(text)
    if match:
        return match.group(1)
    if "weights only" in text.lower() and "GLOBAL" in text:
        found = re.search(r"GLOBAL\s+([\w.]+)", text)
        return found.group(1) if found else "an unknown global"
    return None


# Globals a plain torch.save of tensors and containers uses; anything else is an object to unpickle.
_PLAIN_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode")
_MAX_PICKLE_SCAN = 256 * 1024 * 1024


def _pickled_globals(path: Path) -> Optional[list[str]]:
    """The classes/functions a pickle in ``path`` refers to, found without executing it.

    ``pickletools.genops`` only decodes opcodes. None when the bytes are not one complete pickle
    (a torch zip archive's ``data.pkl``, or a raw pickle file).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if name is None or archive.getinfo(name).file_size > _MAX_PICKLE_SCAN:
                    return None
                data = archive.read(name)
        else:
            if path.stat().st_size > _MAX_PICKLE_SCAN:
                return None
            data = path.read_bytes()
        names, strings = [], []
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif opcode.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
        return names
    except Exception:  # zip or pickle structure broken: corrupt
        return None


def load_checkpoint_safely(path: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and turn every failure into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", kind="missing")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, KeyError, ... here
        name = _untrusted_global(err)
        if name is None and isinstance(err, pickle.UnpicklingError):
            # torch's unpickler stops at opcodes it does not know (e.g. protocol 4+ framing) before
            # it reaches a global; decode the pickle (without running it) to tell the cases apart.
            found = [g for g in (_pickled_globals(path) or []) if not g.startswith(_PLAIN_GLOBALS)]
            name = ", ".join(dict.fromkeys(found[:3])) or None
        if name is not None:
            raise CheckpointError(
                f"refusing to load {path}: it is untrusted: it holds pickled Python objects outside the "
                f"weights-only allow-list ({name}), and unpickling those can run code; genmodels opens only "
                "files of tensors and plain values, such as the checkpoints `genmodels fit` writes",
                kind="untrusted",
            ) from err
        text = " ".join(str(err).split())
        text = text.split("WeightsUnpickler error:", 1)[-1].strip() if "WeightsUnpickler error:" in text else text
        detail = text.split(" Check the documentation")[0].split(". ")[0][:200] or "the file ends early"
        raise CheckpointError(
            f"cannot read {path}: the file is corrupt or not a PyTorch checkpoint (a truncated copy or an "
            f"interrupted save?): {type(err).__name__}: {detail}; use another checkpoint, e.g. an earlier "
            "iter_*.ckpt from the same run",
            kind="corrupt",
        ) from err
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
    # getattr: importing a checked class by its recorded name: the lookup itself.
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
