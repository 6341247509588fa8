"""Opening checkpoints that may come from someone else.

``torch.load`` unpickles, and unpickling runs code: every checkpoint a command or app opens goes
through `load_checkpoint_safely` (``weights_only=True``: tensors and plain containers only), and a
model is rebuilt from a checkpoint only if its recorded class is a `GenerativeModel` defined in an
allowed package (by default ``genmodels``), so a crafted file cannot make us import arbitrary code.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from genmodels.base import GenerativeModel, weights_digest
from genmodels.errors import UserError

__all__ = ["CheckpointError", "load_checkpoint_safely", "load_model", "model_class_of", "build_model", "verify_weights",
           "weights_digest"]

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
    verify_weights(checkpoint, path)
    return checkpoint


def model_class_of(checkpoint: dict[str, Any], allowed_packages: tuple[str, ...] = ("genmodels",)) -> type:
    """The `GenerativeModel` subclass that wrote ``checkpoint``, resolved against the allowlist as text.

    The recorded name must spell a class of `genmodels.resolve.MODELS` (any spelling); nothing
    else is imported. ``allowed_packages`` is kept for callers and must include ``genmodels``.
    """
    from genmodels.resolve import ResolveError, model_class

    meta = checkpoint.get("genmodels")
    if not isinstance(meta, dict) or not isinstance(meta.get("model_class"), str):
        raise CheckpointError("not a genmodels checkpoint (no 'genmodels' section naming the model class)")
    if "genmodels" not in allowed_packages:
        raise CheckpointError(f"allowed_packages {allowed_packages} excludes genmodels: no model class can be built")
    try:
        cls = model_class(meta["model_class"], "the checkpoint's model class")
    except ResolveError as err:
        raise CheckpointError(str(err)) from None
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise CheckpointError(f"{meta['model_class']!r} is not a genmodels GenerativeModel")
    return cls


#: Default bound on the memory a model rebuilt from a checkpoint may take (``--max-memory-gb``).
DEFAULT_MAX_MEMORY_GB = 8.0


def verify_weights(checkpoint: dict[str, Any], path: Any) -> None:
    """Refuse weights that differ from the hash recorded at save, or that are not finite (one line naming the key)."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        return
    meta = checkpoint.get("genmodels")
    recorded = meta.get("weights_sha256") if isinstance(meta, dict) else None
    if isinstance(recorded, dict):
        actual = weights_digest(state)
        for key in sorted(set(recorded) | set(actual)):
            if recorded.get(key) != actual.get(key):
                what = ("is missing" if key not in actual else "was not there when it was saved" if key not in recorded
                        else "differs from the hash recorded when it was saved")
                raise CheckpointError(f"{path}: tensor {key} {what}: the file was damaged (a bit flip, a bad copy) "
                                      "or edited; use another copy or an earlier iter_*.ckpt", kind="corrupt")
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: tensor {key} holds NaN or infinite values: the run had diverged when "
                                  "it was saved; use an earlier checkpoint", kind="invalid")


def build_model(checkpoint: dict[str, Any], path: Any = "the checkpoint", strict: bool = True,
                max_memory_gb: float = DEFAULT_MAX_MEMORY_GB) -> GenerativeModel:
    """The checkpoint's model with its weights: class from the allowlist, size checked before any allocation.

    The model is first built on the ``meta`` device (shapes only, no memory), so hyperparameters
    that would allocate terabytes are refused by their estimate, and every parameter shape is
    compared with the checkpoint's before the real build. Every mismatch is one line naming the key.
    """
    import math

    cls = model_class_of(checkpoint)
    raw = checkpoint.get("hyper_parameters") or {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: hyper_parameters is a {type(raw).__name__}, not a mapping")
    hparams = {k: v for k, v in raw.items() if not str(k).startswith("_")}
    # An option added after a checkpoint was written: the checkpoint means the model of its time.
    hparams = {**getattr(cls, "checkpoint_defaults", {}), **hparams}
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: the checkpoint holds no state_dict")
    if not (max_memory_gb > 0 and math.isfinite(max_memory_gb)):
        raise UserError(f"--max-memory-gb must be a finite number > 0, got {max_memory_gb}")
    shapes = _meta_shapes(cls, hparams, path)
    if shapes is not None:
        nbytes = sum(math.prod(shape) * size for shape, size in shapes.values())
        if nbytes > max_memory_gb * 1024**3:
            raise CheckpointError(f"{path}: its hyperparameters build a {cls.__name__} of about {nbytes / 1024**3:.3g} GiB, "
                                  f"over the --max-memory-gb {max_memory_gb:g} limit; nothing was allocated")
        for key, value in state_dict.items():
            # An empty built buffer (example sources, image pools) is a placeholder the model fills in training.
            if isinstance(value, torch.Tensor) and key in shapes and 0 not in shapes[key][0] and tuple(value.shape) != shapes[key][0]:
                raise CheckpointError(f"{path}: tensor {key} has shape {list(value.shape)} in the checkpoint, but its "
                                      f"hyperparameters build {list(shapes[key][0])}; the file was edited or is of another model")
    # Building draws initial weights from the global RNG; loading must not move the caller's stream.
    with torch.random.fork_rng(devices=[]):
        try:
            model = cls(**hparams)
        except TypeError as err:
            raise CheckpointError(f"{path}: its hyperparameters do not fit {cls.__name__}: {err}") from None
    if strict:
        result = model.load_state_dict(state_dict, strict=False)
        if result.missing_keys:
            raise CheckpointError(f"{path}: tensor {result.missing_keys[0]} is missing from the checkpoint "
                                  f"({len(result.missing_keys)} missing in all); it is not a complete {cls.__name__} checkpoint")
        if result.unexpected_keys:
            raise CheckpointError(f"{path}: tensor {result.unexpected_keys[0]} in the checkpoint is not a {cls.__name__} "
                                  f"weight ({len(result.unexpected_keys)} unexpected in all)")
    return model


def _meta_shapes(cls: type, hparams: dict[str, Any], path: Any) -> Optional[dict[str, tuple[tuple[int, ...], int]]]:
    """Each state tensor's (shape, bytes per element) of ``cls(**hparams)``, built on the meta device."""
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            model = cls(**hparams)
    except TypeError as err:
        raise CheckpointError(f"{path}: its hyperparameters do not fit {cls.__name__}: {err}") from None
    except (ValueError, UserError) as err:
        raise CheckpointError(f"{path}: its hyperparameters are refused by {cls.__name__}: {err}") from None
    except Exception:  # a constructor that computes on tensors: no estimate, the real build is checked after
        return None
    return {k: (tuple(v.shape), v.element_size()) for k, v in model.state_dict().items()}


def load_model(
    path: PathLike, map_location: Any = "cpu", allowed_packages: tuple[str, ...] = ("genmodels",)
) -> GenerativeModel:
    """Rebuild the model of a training checkpoint (hyperparameters + weights), in eval mode."""
    checkpoint = load_checkpoint_safely(path, map_location=map_location)
    model_class_of(checkpoint, allowed_packages)
    model = build_model(checkpoint, path)
    model.iteration = int(checkpoint["genmodels"].get("iteration", 0))
    return model.eval()
