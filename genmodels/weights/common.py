"""What every weights converter does the same way, with the same one-line errors.

Reading a ``torch.save``-d file without running code, telling the given files apart by role,
turning ``--option key=value`` into model arguments, building the model, and fitting the file's
tensors into it: each tensor must have a place of its shape, and each place a tensor.
"""

from __future__ import annotations

import inspect
import pathlib
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor, nn

from genmodels.weights import WeightsError

__all__ = ["build", "by_role", "fit", "load_mapped", "option_value", "read_record", "read_state_dict", "training_options"]


def read_record(path: pathlib.Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)``; `WeightsError` if the file is missing or is not ``what``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except Exception as err:  # unpickling errors of every kind: the file is not what torch.save wrote
        raise WeightsError(f"{path}: not a {what} ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None


def read_state_dict(path: pathlib.Path) -> dict[str, Tensor]:
    """A ``torch.save``-d state dict, read without running code; `WeightsError` if it is none."""
    state = read_record(path, "PyTorch state dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return state


def by_role(sources: Iterable[pathlib.Path], role: Callable[[pathlib.Path], str]) -> dict[str, pathlib.Path]:
    """The given files by the role ``role`` reads from each one's name (G, D, ...); one file a role."""
    files: dict[str, pathlib.Path] = {}
    for path in map(pathlib.Path, sources):
        name = role(path)
        if name in files:
            raise WeightsError(f"two {name} files: {files[name]} and {path}")
        files[name] = path
    return files


def option_value(key: str, text: str) -> Any:
    """The YAML value of ``--option key=text`` (YAML 1.1 reads "1e-4" as a string: such a string is a float)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise WeightsError(f"--option {key}={text}: not a YAML value") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def training_options(model_class: type, options: dict[str, str], architecture: set[str], fmt: str) -> dict[str, Any]:
    """``--option key=value`` pairs as ``model_class`` keyword arguments (YAML values).

    Keys the source's tensors decide are refused, and so are keys that are not options of the
    model or of its bases, `AdversarialModel` among them (training settings the files do not hold:
    lr, EMA, loss, ...).
    """
    known = set()
    for cls in model_class.__mro__:  # a model passes its bases' options on through **kwargs
        if "__init__" in vars(cls):
            known |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "args"}
    parsed: dict[str, Any] = {}
    for key, text in options.items():
        if key in architecture:
            raise WeightsError(f"--option {key}: {fmt} reads {key} from the weights; it cannot be set")
        if key not in known:
            raise WeightsError(f"--option {key}: not an option of {model_class.__name__} (see `genmodels fit --help`)")
        parsed[key] = option_value(key, text)
    return parsed


def build(model_class: type, errors: tuple[type[BaseException], ...] = (ValueError, TypeError), **kwargs: Any) -> Any:
    """``model_class(**kwargs)``; an argument it refuses (one of ``errors``) becomes a `WeightsError`."""
    try:
        return model_class(**kwargs)
    except errors as err:
        raise WeightsError(f"the weights need a {model_class.__name__} genmodels cannot build: {err}") from None


def fit(own: dict[str, Tensor], name: str, value: Tensor, source: str, shown: str, network: str) -> None:
    """Refuse a file's tensor (``shown``, as the file names it) with no place ``name`` of its shape in ``network``."""
    if name not in own:
        raise WeightsError(f"{source}: tensor {shown!r} has no place in genmodels' {network}; the networks differ")
    if own[name].shape != value.shape:
        raise WeightsError(f"{source}: tensor {shown!r} has shape {tuple(value.shape)}, the network needs {tuple(own[name].shape)}")


def load_mapped(module: nn.Module, tensors: Iterable[tuple[str, str, Tensor]], source: str,
                transform: Optional[Callable[[str, Tensor], Tensor]] = None,
                fill: Optional[Callable[[str, Tensor], Optional[Tensor]]] = None) -> None:
    """Load ``(name in module, name in the file, value)`` triples into ``module``, every shape checked.

    ``transform(name, value)`` rearranges a value that fits (same shape, another layout); every
    tensor of ``module`` must be given, or made by ``fill(name, own)`` (None: refused).
    """
    own = module.state_dict()
    network = type(module).__name__
    state: dict[str, Tensor] = {}
    for name, shown, value in tensors:
        fit(own, name, value, source, shown, network)
        state[name] = transform(name, value) if transform else value
    for name in sorted(set(own) - set(state)):
        made = fill(name, own[name]) if fill else None
        if made is None:
            raise WeightsError(f"{source}: the file has no tensor for {name!r} of genmodels' {network} (its network is smaller than its shapes say)")
        state[name] = made
    module.load_state_dict(state)


def load_in_order(modules: list[nn.Module], layers: list[tuple[str, dict[str, Tensor]]], source: str,
                  bias_optional: bool = False, hint: str = "") -> None:
    """A file's layers ``(name, {tensor name: value})``, in order, onto ``modules`` (as many), every shape checked.

    Every tensor of a module must be given; with ``bias_optional`` a bias the file lacks is zero.
    """
    if len(modules) != len(layers):
        raise WeightsError(f"{source}: {len(layers)} layers with weights, the genmodels network has {len(modules)}{hint}")
    for module, (name, tensors) in zip(modules, layers):
        own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        for key, value in tensors.items():
            fit(own, key, value, source, f"{name}.{key}", type(module).__name__)
            own[key].data.copy_(value)
        optional = {"num_batches_tracked"}
        if bias_optional and "bias" in own and "bias" not in tensors:
            own["bias"].data.zero_()
            optional.add("bias")
        missing = sorted(set(own) - set(tensors) - optional)
        if missing:
            raise WeightsError(f"{source}: tensor {name + '.' + missing[0]!r} is missing")
