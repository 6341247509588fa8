"""Write pickles in the layout of NVlabs' ``network-snapshot-*.pkl`` without their code.

The committed fixtures (tests/fixtures/official/stylegan2-ada) hold the authors' networks as
state_dicts, per-submodule class names and init kwargs (made by
scripts/official/make_fixtures_stylegan2_ada.py from their checkout). `write_snapshot` re-pickles
them exactly as ``torch_utils.persistence`` does — every network a call of
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with the class name, the module
state and a module source string — so the importer reads the official layout, but the source
embedded here is ``module_src`` (empty by default, or a payload for the safety tests).
Pickling needs neither torch_utils nor dnnlib: their globals are written as names only.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "official" / "stylegan2-ada"
BUFFERS = ("w_avg", "noise_const", "resample_filter")


class _Global:
    """A name to write as a pickle global (module, name) without importing it."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> None:  # pickle asks a reduce function to be callable
        raise AssertionError("a pickle global stand-in is never called")


RECONSTRUCT = _Global("torch_utils.persistence", "_reconstruct_persistent_obj")
EASY_DICT = _Global("dnnlib.util", "EasyDict")


class Reduce:
    """An object that pickles as ``func(*args)`` for a `_Global` or any picklable callable ``func``."""

    def __init__(self, func: Any, args: tuple, items: Any = None) -> None:
        self.func, self.args, self.items = func, args, items

    def __reduce__(self) -> Any:
        return (self.func, self.args, None, None, iter(self.items.items()) if self.items is not None else None)


class _Pickler(pickle._Pickler):  # the Python pickler: its save_global can write names as given
    def save_global(self, obj: Any, name: Any = None) -> None:
        if isinstance(obj, _Global):
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _Global):
            memo = self.memo.get(id(obj))
            return self.write(self.get(memo[0])) if memo is not None else self.save_global(obj)
        return super().save(obj, save_persistent_id)


def dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()


def easy_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return Reduce(EASY_DICT, (), {k: easy_dict(v) for k, v in value.items()})
    return value


def persistent(class_name: str, state: dict[str, Any], module_src: str) -> Reduce:
    meta = dict(type="class", version=4, module_src=module_src, class_name=class_name, state=state)
    return Reduce(RECONSTRUCT, (meta,))


def network(state_dict: dict[str, torch.Tensor], classes: dict[str, str], init_kwargs: dict[str, Any], module_src: str) -> Reduce:
    """The module tree of one network, each module's __dict__ as torch.nn.Module keeps it."""
    def build(path: str) -> Reduce:
        prefix = f"{path}." if path else ""
        children = sorted({name[len(prefix):].split(".")[0] for name in classes if name.startswith(prefix) and name != path})
        own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
        parameters = collections.OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=False)) for k, v in own.items() if k not in BUFFERS)
        buffers = collections.OrderedDict((k, v.clone()) for k, v in own.items() if k in BUFFERS)
        state = {
            "training": False, "_parameters": parameters, "_buffers": buffers, "_non_persistent_buffers_set": set(),
            "_forward_hooks": collections.OrderedDict(), "_modules": collections.OrderedDict((c, build(prefix + c)) for c in children),
        }
        if not path:
            state.update(_init_args=(), _init_kwargs=easy_dict(init_kwargs))
        return persistent(classes[path], state, module_src)
    return build("")


def write_snapshot(fixture: str, path: Path, module_src: str = "") -> Path:
    """The fixture ``fixture`` (unconditional / conditional) as a network-snapshot pickle at ``path``."""
    directory = FIXTURES / fixture
    stored = torch.load(directory / "state.pt", weights_only=True)
    kwargs = json.loads((directory / "kwargs.json").read_text())
    snapshot = {"training_set_kwargs": easy_dict(kwargs["training_set_kwargs"])}
    for key in ("G", "D", "G_ema"):
        snapshot[key] = network(stored["state_dict"][key], stored["modules"][key], kwargs[key], module_src)
    snapshot["augment_pipe"] = persistent("AugmentPipe", {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_kwargs": {}}, module_src)
    path.write_bytes(dumps(snapshot))
    return path


def outputs(fixture: str) -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / fixture / "outputs.pt", weights_only=True)
