"""A restricted unpickler for NVlabs network pickles (stylegan2-ada-pytorch ``network-snapshot-*.pkl``).

NVlabs' training loop pickles its networks with ``torch_utils.persistence``: every network class
is reduced to ``_reconstruct_persistent_obj(meta)``, where ``meta`` holds the class name, the
instance's ``__dict__`` and the *source code of the module that defined the class*. The official
``legacy.load_network_pkl`` executes that source, so a crafted snapshot runs anything on load.

`load_snapshot` reads the same files without executing anything: pickle's ``find_class`` resolves
only a short allowlist of names, each to a function written here or to a torch/numpy function that
only builds a tensor or a number:

- ``torch_utils.persistence._reconstruct_persistent_obj`` -> `PersistentObject` (class name and
  instance state; the embedded source is discarded unread);
- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` / ``_rebuild_parameter_with_state``
  (torch's own tensor rebuilders, those ``torch.load(weights_only=True)`` allows);
- ``torch.storage._load_from_bytes`` -> the storage, read with ``torch.load(weights_only=True)``
  (torch's version of it unpickles without restriction);
- ``collections.OrderedDict``, ``dnnlib.util.EasyDict`` (-> a plain dict), ``numpy.dtype`` and
  numpy's numeric scalars (-> Python numbers).

Anything else (``os.system``, ``builtins.exec``, a TensorFlow ``dnnlib.tflib`` network, ...) is
refused with one line naming it, before it is imported or called. Persistent ids are refused too.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from genmodels.weights import WeightsError

__all__ = ["PersistentObject", "RestrictedUnpickler", "load_snapshot", "ALLOWED"]


@dataclass
class PersistentObject:
    """A persistent_class instance as stored: its class name and ``__dict__``; no code."""

    class_name: str
    state: dict[str, Any]
    source_lines: int = 0  # how long the embedded (discarded) module source was, for messages

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def children(self) -> dict[str, "PersistentObject"]:
        modules = self.state.get("_modules") or {}
        return {name: m for name, m in modules.items() if m is not None}

    def state_dict(self, prefix: str = "") -> dict[str, Tensor]:
        """The tensors ``torch.nn.Module.state_dict`` would give: parameters, persistent buffers, recursively."""
        out: dict[str, Tensor] = {}
        for name, value in (self.state.get("_parameters") or {}).items():
            if value is not None:
                out[prefix + name] = _tensor(value, prefix + name)
        skipped = set(self.state.get("_non_persistent_buffers_set") or ())
        for name, value in (self.state.get("_buffers") or {}).items():
            if value is not None and name not in skipped:
                out[prefix + name] = _tensor(value, prefix + name)
        for name, child in self.children().items():
            if not isinstance(child, PersistentObject):
                raise WeightsError(f"submodule {prefix + name} of {self.class_name} is a {type(child).__name__}, not a stored network")
            out.update(child.state_dict(f"{prefix}{name}."))
        return out


def _tensor(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise WeightsError(f"{name} is a {type(value).__name__}, not a tensor")
    return value.detach()


class _EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access): a plain dict here."""


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise WeightsError("a persistent object of the snapshot is not a stored class instance")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise WeightsError(f"the stored {meta['class_name']} has no instance state")
    source = meta.get("module_src")
    return PersistentObject(meta["class_name"], dict(state), source.count("\n") + 1 if isinstance(source, str) else 0)


def _load_storage(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise WeightsError("a tensor storage of the snapshot is not stored as bytes")
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(f"a tensor storage of the snapshot holds more than tensor data ({str(err).splitlines()[0]})") from err


def _numpy_scalar(dtype: Any, data: Any = None) -> Union[int, float, bool, complex]:
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, (bytes, bytearray)):
        raise WeightsError(f"the snapshot stores a numpy scalar of dtype {dtype!r}; only numbers are read")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0].item()


def _numpy_dtype(*args: Any) -> Any:
    import numpy as np

    return np.dtype(*args)


def _rebuild_functions() -> dict[tuple[str, str], Callable[..., Any]]:
    import torch._utils as tu

    found = {
        ("torch._utils", name): getattr(tu, name)
        for name in ("_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state")
        if hasattr(tu, name)
    }
    return found


#: module, name -> what it resolves to. Nothing outside this table is imported or called.
ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from `ALLOWED` (plus torch's tensor rebuilders)."""

    def __init__(self, file: Any, source: str = "the snapshot") -> None:
        super().__init__(file)
        self.source = source
        self.allowed = {**ALLOWED, **_rebuild_functions()}

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            raise WeightsError(
                f"{self.source} needs {module}.{name}, which genmodels' restricted unpickler refuses "
                "(it reads only tensors and init kwargs from NVlabs snapshots, never their code)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise WeightsError(f"{self.source} uses pickle persistent ids; it is not an NVlabs network pickle")


def load_snapshot(path: Union[str, Path], source: Optional[str] = None) -> Any:
    """The unpickled content of an NVlabs network pickle, networks as `PersistentObject`.

    Raises:
        WeightsError: the file needs a global outside the allowlist, or is not a pickle.
    """
    path = Path(path)
    name = source or path.name
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise WeightsError(f"{name} is a torch.save (zip) file, not an NVlabs network pickle (network-snapshot-*.pkl)")
        f.seek(0)
        try:
            return RestrictedUnpickler(f, name).load()
        except WeightsError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, RuntimeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise WeightsError(f"{name} is not a readable network pickle ({reason})") from err
