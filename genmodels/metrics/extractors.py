"""Feature extractors: the networks whose features FID, KID and precision/recall compare.

An extractor maps images ``(N, C, H, W)`` in [-1, 1] (or uint8 in [0, 255]) to `Features`:
``features`` ``(N, d)`` for FID/KID/precision-recall and ``logits`` ``(N, K)`` for IS, in one
forward pass, so an evaluation runs its network once per batch whatever the metrics.

Two are provided, and a metric's name always says which one produced it (``fid_inception``,
``fid_lenet``): numbers from different networks are not comparable.

- ``inception`` (`genmodels.metrics.inception.InceptionExtractor`): the TF-ported InceptionV3 of
  torch-fidelity / torchmetrics (2048-d pool3, 1008 logits), with its reference preprocessing.
- ``classifier:PATH`` (`genmodels.metrics.classifier.DomainClassifier`): a LeNet-5-like domain
  classifier trained by ``genmodels train-classifier`` (84-d penultimate layer, class logits),
  for MNIST-like data where Inception features are a poor fit.

Both are pinned by the SHA-256 of their weights file, which is part of every metric's protocol.

Extractors register themselves by name (`register_extractor`) in the module that defines them;
`build_extractor` looks the name up, so this module imports neither network (no import cycle) and
a new extractor is one decorated function. ``genmodels.metrics`` imports both modules, and
importing any ``genmodels.metrics.*`` module runs that package first, so both are always registered.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import torch
from torch import Tensor, nn

from genmodels.errors import InvalidValue

__all__ = [
    "Features", "FeatureExtractor", "check_images", "quantize", "file_sha256", "build_extractor", "register_extractor",
    "EXTRACTORS",
]

PathLike = Union[str, os.PathLike]

# Generated images are tanh outputs and real ones come from exact uint8 -> [-1, 1] maps; anything
# further out than float rounding is a bug upstream (a [0, 1] or [0, 255] tensor, say).
_RANGE_TOLERANCE = 1e-4

_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


class Features(NamedTuple):
    """One forward pass of an extractor."""

    features: Tensor  #: (N, d) float32: FID, KID, precision/recall
    logits: Tensor  #: (N, K) float32: IS


def file_sha256(path: PathLike) -> str:
    """SHA-256 hex digest of a file (memoized per path, size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def check_sha256(path: PathLike, expected: Optional[str]) -> str:
    """The file's SHA-256; raises ValueError unless it starts with ``expected`` (when given)."""
    actual = file_sha256(path)
    if expected and not actual.startswith(expected.lower()):
        raise InvalidValue(f"{path} has SHA-256 {actual}, expected {expected}: it is not the pinned file")
    return actual


def check_images(images: Tensor, channels: tuple[int, ...]) -> None:
    """Raise ValueError unless ``images`` is (N, C, H, W), C in ``channels``, float in [-1, 1] or uint8."""
    if images.ndim != 4:
        raise InvalidValue(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] not in channels:
        allowed = " or ".join(str(c) for c in channels)
        raise InvalidValue(
            f"expected images with {allowed} channels, got {images.shape[1]} (shape {tuple(images.shape)})"
        )
    if images.dtype == torch.uint8 or images.numel() == 0:
        return
    if not images.is_floating_point():
        raise InvalidValue(f"expected float images in [-1, 1] or uint8 images, got dtype {images.dtype}")
    low, high = torch.aminmax(images.detach())
    low, high = low.item(), high.item()
    if not (low >= -1 - _RANGE_TOLERANCE and high <= 1 + _RANGE_TOLERANCE):  # also false for NaN
        raise InvalidValue(
            f"images must lie in [-1, 1] (the model space of GenerativeModel.sample), found values in "
            f"[{low:.4g}, {high:.4g}]; map [0, 1] images with x * 2 - 1, or pass uint8 pixels"
        )


def quantize(images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8 pixels ``round((x + 1) * 127.5)``; uint8 passes through.

    Generated images are scored as they would be saved (the reference implementations read PNGs
    or cast to uint8), and real images, which are uint8 already, round-trip exactly.
    """
    if images.dtype == torch.uint8:
        return images
    return ((images.to(torch.float32).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images) -> Features``; frozen, always in eval mode.

    Attributes:
        name: short name used in metric keys (``inception``, ``lenet``).
        num_features: ``d`` of ``Features.features``.
        num_logits: ``K`` of ``Features.logits``.
        channels: image channel counts accepted.
        sha256: SHA-256 of the weights file.
    """

    name: str = "extractor"
    num_features: int = 0
    num_logits: int = 0
    channels: tuple[int, ...] = (1, 3)
    sha256: str = ""

    def train(self, mode: bool = True) -> "FeatureExtractor":
        # Frozen network: BatchNorm/Dropout must never switch to training behaviour, whatever
        # the caller (Lightning puts modules in train mode at fit start) does.
        return super().train(False)

    def protocol(self) -> dict[str, Any]:
        """JSON-able description of the extractor and its preprocessing, logged with every value."""
        return {"extractor": self.name, "extractor_sha256": self.sha256, "feature_dim": self.num_features}


ExtractorBuilder = Callable[[str, Optional[PathLike], Optional[str]], "FeatureExtractor"]

EXTRACTORS: dict[str, ExtractorBuilder] = {}
"""Registered extractors: name -> ``build(argument, weights, sha256)``; ``argument`` is the text
after ``name:`` in the spec (empty when there is none)."""


def register_extractor(name: str) -> Callable[[ExtractorBuilder], ExtractorBuilder]:
    """Decorator: make ``build(argument, weights, sha256)`` the extractor of spec ``name[:argument]``.

    >>> @register_extractor("doctest-only")
    ... def build(argument, weights, sha256):
    ...     return argument
    >>> build_extractor("doctest-only:abc")
    'abc'
    >>> del EXTRACTORS["doctest-only"]
    """

    def register(build: ExtractorBuilder) -> ExtractorBuilder:
        if name in EXTRACTORS and EXTRACTORS[name] is not build:
            raise InvalidValue(f"feature extractor {name!r} is registered twice")
        EXTRACTORS[name] = build
        return build

    return register


def build_extractor(spec: str, weights: Optional[PathLike] = None, sha256: Optional[str] = None) -> FeatureExtractor:
    """An extractor from its command-line spelling.

    Args:
        spec: ``inception`` or ``classifier:PATH`` (a file written by ``genmodels train-classifier``).
        weights: Inception weights file (else ``$GENMODELS_INCEPTION_WEIGHTS``, else the torch hub
            cache); ignored for a classifier.
        sha256: expected SHA-256 (or a prefix of it) of the weights / classifier file, to pin it.

    Raises:
        ValueError: unknown spec, or a file whose hash differs from ``sha256``.
        FileNotFoundError: no weights file (the message says where to put it and how to get it).
    """
    name, _, argument = spec.partition(":")
    if name not in EXTRACTORS:
        raise InvalidValue(
            f"unknown extractor {spec!r}: use 'inception' or 'classifier:PATH' (from genmodels train-classifier)"
        )
    return EXTRACTORS[name](argument, weights, sha256)
