"""Classifier scores of images, one column per class or attribute, differentiable in the images.

Controllable generation and bias probing need one thing from a classifier: ``scores(images) ->
(n, K)``, with names for the K columns, that gradients flow through. `Scorer` gives that for
both kinds of classifier:

- a class classifier (``genmodels train-classifier``, `genmodels.metrics.classifier`): scores
  are log-probabilities log p(k|x) (log-softmax), so raising class k takes mass from the others;
- an attribute classifier (`genmodels.apps.attributes`): scores are the per-attribute logits
  (log-odds), independent sigmoid outputs.

`load_scorer` opens either file (weights-only, hash-checked). `class_accuracy` measures how often a
class classifier assigns samples of a class-conditional model to the class they were asked for::

    genmodels class-accuracy --ckpt runs/cgan/digits/checkpoints/last.ckpt \
        --classifier lenet-digits.pt --samples-per-class 100

The class classifier's own ``forward`` runs without gradients and rounds images to uint8 (what
metrics need); the scorer calls its network directly, without the rounding, so gradients reach z.
"""

from __future__ import annotations

from genmodels.errors import InvalidValue

from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.checkpoints import load_checkpoint_safely
from genmodels.conditioning import ConditionError
from genmodels.protocols import class_count

__all__ = ["Scorer", "class_scorer", "attribute_scorer", "load_scorer", "class_accuracy"]


class Scorer(nn.Module):
    """``scores(images) -> (n, K)``, differentiable, with a name per column.

    Args:
        logits: a module mapping images (n, C, H, W) in [-1, 1] to logits (n, K).
        names: the K column names (class names or attribute names).
        kind: ``class`` (scores are log-softmax of the logits) or ``attribute`` (scores are the logits).
        image_shape: (C, H, W) of the images the classifier was trained on.
        source: where it came from (a file and its hash), for reports.

    Example:
        >>> scorer = Scorer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), ["a", "b"], "attribute", (1, 2, 2))
        >>> scorer(torch.zeros(3, 1, 2, 2)).shape, scorer.index("b")
        (torch.Size([3, 2]), 1)
    """

    def __init__(
        self,
        logits: nn.Module,
        names: Sequence[str],
        kind: Literal["class", "attribute"],
        image_shape: tuple[int, int, int],
        source: str = "",
    ) -> None:
        super().__init__()
        if kind not in ("class", "attribute"):
            raise InvalidValue(f"kind must be 'class' or 'attribute', got {kind!r}")
        self.logits, self.names, self.kind = logits, [str(n) for n in names], kind
        self.image_shape, self.source = tuple(int(s) for s in image_shape), source
        self.requires_grad_(False)  # gradients go to the images (and z), never into the classifier
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        """Scores (n, K): log p(k|x) for classes, log-odds for attributes."""
        logits = self.logits(images).float()
        return logits.log_softmax(dim=1) if self.kind == "class" else logits

    def probabilities(self, scores: Tensor) -> Tensor:
        """Scores -> probabilities (softmax / sigmoid), (n, K)."""
        return scores.exp() if self.kind == "class" else torch.sigmoid(scores)

    def index(self, target: Any) -> int:
        """Column of ``target``: a name, or a class index (int or digit string) for class scorers."""
        if str(target) in self.names:
            return self.names.index(str(target))
        if self.kind == "class" and _is_int(target):
            k = int(target)
            if 0 <= k < len(self.names):
                return k
            raise ConditionError(f"class {k} is out of range: the classifier has classes 0..{len(self.names) - 1}")
        what = "classes" if self.kind == "class" else "attributes"
        raise ConditionError(f"unknown {self.kind} {target!r}; the classifier's {what} are {self.names}")

    def check_fits(self, image_shape: Sequence[int], what: str = "the generator") -> None:
        """Raise unless the classifier was trained on images of ``image_shape`` (C, H, W)."""
        if tuple(int(s) for s in image_shape) != self.image_shape:
            raise InvalidValue(
                f"the classifier{' ' + self.source if self.source else ''} was trained on {self.image_shape} images "
                f"but {what} makes {tuple(image_shape)} images; use a classifier trained on the generator's data"
            )


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.lstrip("-").isdigit()


class _ResizedLogits(nn.Module):
    """The class classifier's network on images resized (differentiably) to its input size."""

    def __init__(self, net: nn.Module, input_size: int) -> None:
        super().__init__()
        self.net, self.input_size = net, input_size

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        return self.net(images)[1]


def class_scorer(classifier: Any) -> Scorer:
    """A `Scorer` of a `genmodels.metrics.classifier.DomainClassifier` (log-softmax scores)."""
    meta = classifier.meta
    names = meta.get("class_names") or [str(k) for k in range(int(meta["num_classes"]))]
    size = int(meta.get("data_image_size", meta["image_size"]))
    source = f"(sha256 {classifier.sha256[:12]})" if classifier.sha256 else ""
    return Scorer(_ResizedLogits(classifier.net, int(meta["image_size"])), names, "class", (int(meta["channels"]), size, size), source)


def attribute_scorer(classifier: Any) -> Scorer:
    """A `Scorer` of a `genmodels.apps.attributes.AttributeClassifier` (logit scores)."""
    source = f"(sha256 {classifier.sha256[:12]})" if classifier.sha256 else ""
    return Scorer(classifier, classifier.attribute_names, "attribute", classifier.image_shape, source)


def load_scorer(path: Any, sha256: Optional[str] = None, map_location: Any = "cpu") -> Scorer:
    """A `Scorer` from a class-classifier or attribute-classifier file (whichever it is).

    Raises:
        CheckpointError: missing, unreadable or unsafe file.
        ValueError: neither kind of classifier file, or a hash mismatch.
    """
    from genmodels.apps import attributes
    from genmodels.metrics import classifier as classes

    found = load_checkpoint_safely(path, map_location=map_location).get("format")
    if found == classes.FORMAT:
        return class_scorer(classes.load_classifier(path, sha256, map_location))
    if found == attributes.FORMAT:
        return attribute_scorer(attributes.load_attribute_classifier(path, sha256, map_location))
    raise InvalidValue(
        f"{Path(path)} is not a classifier file (format {found!r}); train one with `genmodels train-classifier` "
        "(class labels) or `genmodels train-attributes` (attributes)"
    )


@torch.no_grad()
def class_accuracy(
    model: Any,
    classifier: Any,
    samples_per_class: int = 100,
    batch_size: int = 500,
    generator: Optional[torch.Generator] = None,
) -> tuple[float, Tensor]:
    """How often ``classifier`` labels samples of class k from a class-conditional ``model`` as k.

    Args:
        model: a class-conditional model (``num_classes``, ``sample(n, condition=labels)``), in eval mode.
        classifier: has ``predict(images) -> labels`` and ``meta["num_classes"]`` (a DomainClassifier).
        samples_per_class: samples drawn per class.
        batch_size: samples per call of ``sample``.
        generator: seeds the samples.

    Returns:
        (overall accuracy, per-class accuracy (K,)).
    """
    num_classes = class_count(model)
    classifier_classes = int(classifier.meta["num_classes"])
    if num_classes < 2:
        raise InvalidValue(f"{type(model).__name__} is not class-conditional (num_classes={num_classes})")
    if classifier_classes != num_classes:
        raise InvalidValue(
            f"the classifier has {classifier_classes} classes but the model is conditioned on {num_classes}; "
            "use a classifier trained on the model's dataset"
        )
    class_scorer(classifier).check_fits(model.image_shape, "the model")
    labels = torch.arange(num_classes, device=model.device).repeat_interleave(samples_per_class)
    predicted = torch.cat(
        [classifier.predict(model.sample(len(chunk), condition=chunk, generator=generator)) for chunk in labels.split(batch_size)]
    )
    hits = (predicted.to(labels.device) == labels).float()
    return hits.mean().item(), hits.view(num_classes, samples_per_class).mean(dim=1).cpu()
