"""What a conditional model is conditioned on: class labels or attribute vectors.

A `Condition` turns what users and batches give (a class index, a LongTensor of labels, a float
attribute matrix) into the one form networks take: a float matrix ``(n, dim)``, one-hot for class
labels (Mirza & Osindero 2014, arXiv:1411.1784, Sec. 4.1) and the attribute values themselves for
attributes (e.g. CelebA's 40 binary attributes, Liu et al. 2015, arXiv:1411.7766). Models, grid
callbacks and apps share it, so the rules and the error messages are the same everywhere:

- `ClassLabels`: ``condition`` is an int (every sample of that class), a sequence or 1-D integer
  tensor of ``n`` labels in ``[0, num_classes)``; batches carry it as ``batch["label"]``.
- `Attributes`: ``condition`` is a float tensor ``(n, A)`` or ``(A,)`` (broadcast to every
  sample), or a mapping ``{name: value}`` (unnamed attributes 0); batches carry ``batch["attributes"]``.

Unconditional draws (``condition=None``) are uniform over classes, and independent fair coins for
attributes (the data's attribute frequencies are not modelled).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import Tensor

from genmodels.errors import UserError
from genmodels.protocols import dataset_classes

__all__ = ["Condition", "ClassLabels", "Attributes", "ConditionError", "make_condition"]


class ConditionError(ValueError, UserError):
    """A condition that does not fit the model: wrong type, shape, class or attribute name."""


class Condition:
    """Base class: validate user conditions, draw random ones, encode them for the networks."""

    #: Width of the encoded condition (``encode`` returns ``(n, dim)``).
    dim: int
    #: Where a batch holds the condition.
    batch_key: str

    def check(self, condition: Any, n: int, device: Optional[torch.device] = None) -> Tensor:
        """A user condition for ``n`` samples -> the canonical tensor, or a `ConditionError`."""
        raise NotImplementedError

    def draw(self, n: int, generator: Optional[torch.Generator] = None, device: Optional[torch.device] = None) -> Tensor:
        """``n`` random canonical conditions, drawn with ``generator``."""
        raise NotImplementedError

    def encode(self, condition: Tensor) -> Tensor:
        """Canonical conditions -> float ``(n, dim)``: what G and D take."""
        raise NotImplementedError

    def check_datamodule(self, datamodule: Any) -> None:
        """Raise unless ``datamodule``'s batches carry this condition (same classes / attributes)."""
        raise NotImplementedError

    def from_batch(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The canonical condition of a batch (no host sync: nothing is checked on the device)."""
        if self.batch_key not in batch:
            raise ConditionError(
                f"the batch has no {self.batch_key!r} (keys: {sorted(batch)}); a model conditioned on "
                f"{self.describe()} needs a datamodule that yields them"
            )
        return batch[self.batch_key]

    def describe(self) -> str:
        raise NotImplementedError


class ClassLabels(Condition):
    """Class labels in ``[0, num_classes)``, encoded one-hot.

    Example:
        >>> labels = ClassLabels(3)
        >>> labels.check(2, n=2).tolist(), labels.encode(torch.tensor([0, 2])).tolist()
        ([2, 2], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    """

    batch_key = "label"

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ConditionError(f"num_classes must be >= 2 for a class-conditional model, got {num_classes}")
        self.num_classes = self.dim = int(num_classes)

    def check(self, condition: Any, n: int, device: Optional[torch.device] = None) -> Tensor:
        if isinstance(condition, bool) or (isinstance(condition, Tensor) and condition.dtype == torch.bool):
            raise ConditionError(f"a class condition must be integer labels, got {condition!r}")
        if isinstance(condition, int):
            self._check_range(torch.tensor([condition]))
            return torch.full((n,), condition, dtype=torch.int64, device=device)
        labels = _as_tensor(condition, device, f"labels in 0..{self.num_classes - 1}")
        if labels.ndim == 0 and not labels.is_floating_point():
            labels = labels.expand(n)  # a 0-d tensor: like an int, every sample of that class
        if labels.is_floating_point() or labels.is_complex() or labels.ndim != 1 or labels.shape[0] != n:
            raise ConditionError(
                f"a class condition for {n} samples must be an int or {n} integer labels (shape ({n},)), "
                f"got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        self._check_range(labels)
        return labels.to(torch.int64)

    def _check_range(self, labels: Tensor) -> None:
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.numel():
            raise ConditionError(f"class {bad[0].item()} is out of range: this model has classes 0..{self.num_classes - 1}")

    def draw(self, n: int, generator: Optional[torch.Generator] = None, device: Optional[torch.device] = None) -> Tensor:
        return torch.randint(0, self.num_classes, (n,), generator=generator, device=device)

    def encode(self, condition: Tensor) -> Tensor:
        # scatter instead of F.one_hot: one_hot validates the range with a host sync per call.
        one_hot = torch.zeros(condition.shape[0], self.num_classes, device=condition.device)
        return one_hot.scatter_(1, condition.long()[:, None], 1.0)

    def check_datamodule(self, datamodule: Any) -> None:
        found = dataset_classes(datamodule)
        if found == self.num_classes:
            return
        name = type(datamodule).__name__
        if found == 0:
            raise ConditionError(f"the model is conditioned on {self.num_classes} classes but {name} has no class labels")
        raise ConditionError(
            f"model.init_args.num_classes={self.num_classes} but {name} has {found} classes; "
            f"set --model.init_args.num_classes {found}"
        )

    def describe(self) -> str:
        return f"{self.num_classes} class labels"


class Attributes(Condition):
    """Named attributes, a float vector per sample (binary {0, 1} in CelebA).

    Example:
        >>> attributes = Attributes(["Smiling", "Eyeglasses"])
        >>> attributes.check({"Eyeglasses": 1.0}, n=2).tolist()
        [[0.0, 1.0], [0.0, 1.0]]
    """

    batch_key = "attributes"

    def __init__(self, names: Sequence[str]) -> None:
        names = [str(n) for n in names]
        if not names:
            raise ConditionError("attribute_names is empty; give the names of the attributes to condition on")
        if len(set(names)) != len(names):
            raise ConditionError(f"attribute_names has duplicates: {names}")
        self.names = names
        self.dim = len(names)

    def index(self, name: str) -> int:
        """Column of attribute ``name``; a `ConditionError` lists the known names otherwise."""
        if name not in self.names:
            raise ConditionError(f"unknown attribute {name!r}; this model's attributes are {self.names}")
        return self.names.index(name)

    def check(self, condition: Any, n: int, device: Optional[torch.device] = None) -> Tensor:
        if isinstance(condition, Mapping):
            values = torch.zeros(self.dim)
            for name, value in condition.items():
                values[self.index(name)] = float(value)
            condition = values
        values = _as_tensor(condition, device, f"attributes {self.names}")
        if values.dtype == torch.bool or not (values.is_floating_point() or values.is_complex()):
            values = values.float()  # {0, 1} given as ints or booleans
        if values.ndim == 1 and values.shape[0] == self.dim:
            values = values.expand(n, -1)
        if values.ndim != 2 or tuple(values.shape) != (n, self.dim) or not values.is_floating_point():
            raise ConditionError(
                f"an attribute condition for {n} samples must be a float tensor of shape ({n}, {self.dim}) or "
                f"({self.dim},) (attributes {self.names}), got {values.dtype} of shape {tuple(values.shape)}"
            )
        if not torch.isfinite(values).all():
            raise ConditionError("attribute values must be finite")
        return values.float()

    def draw(self, n: int, generator: Optional[torch.Generator] = None, device: Optional[torch.device] = None) -> Tensor:
        return (torch.rand(n, self.dim, generator=generator, device=device) < 0.5).float()

    def encode(self, condition: Tensor) -> Tensor:
        return condition.float()

    def check_datamodule(self, datamodule: Any) -> None:
        # getattr: only attribute datasets (CelebA) name attributes; a mismatch is reported below.
        found = list(getattr(datamodule, "attribute_names", None) or [])
        if found == self.names:
            return
        name = type(datamodule).__name__
        if not found:
            raise ConditionError(f"the model is conditioned on attributes {self.names} but {name} has none")
        raise ConditionError(
            f"model.init_args.attribute_names {self.names} differ from {name}'s attributes {found}; "
            "give the datamodule's names in its order"
        )

    def describe(self) -> str:
        return f"attributes {self.names}"


def _as_tensor(condition: Any, device: Optional[torch.device], expected: str) -> Tensor:
    try:
        return torch.as_tensor(condition, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConditionError(f"cannot read {condition!r} as a condition ({expected} expected): {err}") from None


def make_condition(num_classes: int = 0, attribute_names: Optional[Sequence[str]] = None) -> Condition:
    """`ClassLabels` or `Attributes`: exactly one of ``num_classes`` (> 0) and ``attribute_names``."""
    if attribute_names is not None:
        if num_classes:
            raise ConditionError(
                f"condition on class labels (num_classes={num_classes}) or on attributes (attribute_names), "
                "not both; set num_classes: 0 to condition on attributes"
            )
        return Attributes(attribute_names)
    return ClassLabels(num_classes)
