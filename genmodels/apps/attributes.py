"""A multi-label attribute classifier: one independent sigmoid output per attribute.

The class-label classifier of ``genmodels train-classifier`` (`genmodels.metrics.classifier`,
a LeNet-5-like CNN with a softmax over classes) has no multi-label form; attribute data (CelebA's
40 binary attributes, Liu et al. 2015, arXiv:1411.7766, or any datamodule whose batches carry
``attributes`` float (B, A) in {0, 1} and that names them in ``attribute_names``) needs one
sigmoid per attribute trained with binary cross-entropy. The network is the same LeNet-5 body
with A outputs; files are weights-only and pinned by SHA-256 like the class classifier's.

Controllable generation and bias probing read these files through `genmodels.apps.scores`.

Usage (until ``genmodels train-classifier`` dispatches attribute datamodules here)::

    genmodels train-attributes --data experiments/<model>/celeba.yaml --epochs 5 --out attributes.pt

Not implemented: a deeper network for high-resolution faces (inputs are resized to 32 px), class
balancing of rare attributes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from genmodels.metrics.classifier import LeNet5, fit_classifier, read_pinned, save_pinned_classifier
from genmodels.metrics.extractors import PathLike
from genmodels.errors import InvalidValue
from genmodels.protocols import dataset_name

__all__ = [
    "AttributeClassifier",
    "train_attribute_classifier",
    "save_attribute_classifier",
    "load_attribute_classifier",
    "FORMAT",
]

FORMAT = "genmodels.attribute-classifier/v1"
INPUT_SIZE = 32  # LeNet-5's input; other sizes are resized to it


class AttributeClassifier(nn.Module):
    """A trained `LeNet5` with A sigmoid outputs and its metadata.

    Args:
        net: the network (``num_classes`` = number of attributes).
        meta: ``attribute_names``, ``channels``, ``data_image_size`` (the size of the images it was
            trained on) and provenance (dataset, test accuracy).
        sha256: hash of the file it came from ("" for an unsaved classifier).
    """

    def __init__(self, net: LeNet5, meta: dict[str, Any], sha256: str = "") -> None:
        super().__init__()
        self.net, self.meta, self.sha256 = net, dict(meta), sha256
        self.attribute_names: list[str] = list(meta["attribute_names"])
        self.channels = int(meta["channels"])
        self.data_image_size = int(meta["data_image_size"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images it was trained on."""
        return (self.channels, self.data_image_size, self.data_image_size)

    def forward(self, images: Tensor) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] -> logits (N, A); differentiable in the images."""
        if images.shape[-1] != INPUT_SIZE or images.shape[-2] != INPUT_SIZE:
            images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return self.net(images)[1]

    @torch.no_grad()
    def predict_proba(self, images: Tensor) -> Tensor:
        """P(attribute present), (N, A)."""
        return torch.sigmoid(self(images))

    def predict(self, images: Tensor) -> Tensor:
        """Present (1) or absent (0) per attribute, float (N, A)."""
        return (self.predict_proba(images) > 0.5).float()


# ---------------------------------------------------------------------------------------------
# Files


def save_attribute_classifier(classifier: AttributeClassifier, path: PathLike) -> str:
    """Write a weights-only file (temp + rename) and a ``<path>.sha256`` sidecar; returns the hash."""
    return save_pinned_classifier(classifier, path, FORMAT)


def load_attribute_classifier(path: PathLike, sha256: Optional[str] = None, map_location: Any = "cpu") -> AttributeClassifier:
    """A classifier written by `save_attribute_classifier` (opened with ``weights_only=True``).

    Args:
        path: the file.
        sha256: expected hash (or prefix); without it a ``<path>.sha256`` sidecar is checked if present.
        map_location: device to load to.

    Raises:
        CheckpointError: missing, unreadable or unsafe file.
        ValueError: not an attribute-classifier file, or a hash mismatch.
    """
    checkpoint, digest = read_pinned(path, sha256, map_location, FORMAT, "an attribute classifier")
    meta = checkpoint["meta"]
    net = LeNet5(int(meta["channels"]), len(meta["attribute_names"]), INPUT_SIZE)
    net.load_state_dict(checkpoint["state_dict"])
    return _frozen(AttributeClassifier(net, meta, digest).to(map_location))


def _frozen(classifier: AttributeClassifier) -> AttributeClassifier:
    classifier.requires_grad_(False)
    return classifier.eval()


# ---------------------------------------------------------------------------------------------
# Training


def _batch(datamodule: Any, batch: dict[str, Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    """(images in [-1, 1], attributes float) of a loader batch, through the datamodule's device hook."""
    batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
    batch = datamodule.on_after_batch_transfer(batch, 0)
    if "attributes" not in batch:
        raise InvalidValue(f"{type(datamodule).__name__}'s batches have no 'attributes' (keys: {sorted(batch)})")
    return batch["image"], batch["attributes"].float()


@torch.no_grad()
def attribute_accuracy(classifier: AttributeClassifier, loader: Any, datamodule: Any, device: torch.device) -> Tensor:
    """Per-attribute accuracy (A,) over a dataloader."""
    correct, total = 0.0, 0
    for batch in loader:
        images, attributes = _batch(datamodule, batch, device)
        correct = correct + (classifier.predict(images) == attributes).float().sum(0)
        total += attributes.shape[0]
    return torch.as_tensor(correct, dtype=torch.float32) / max(total, 1)


def train_attribute_classifier(
    datamodule: Any,
    epochs: int = 10,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> AttributeClassifier:
    """Train on ``datamodule``'s train split with binary cross-entropy per attribute.

    The per-attribute test accuracy goes into the metadata. Runs under `torch.random.fork_rng`,
    so the caller's global RNG is left as it was.

    Args:
        datamodule: yields ``{"image", "attributes"}`` batches and names them in ``attribute_names``.
        epochs: passes over the training split.
        lr: Adam learning rate (cosine-annealed to 0).
        seed: seed of the initialization.
        device: where to train.
        log: receives one progress line per epoch.
    """
    # getattr: only attribute datasets (CelebA) name attributes; others are refused below.
    names: Sequence[str] = list(getattr(datamodule, "attribute_names", None) or [])
    if not names:
        raise InvalidValue(f"{type(datamodule).__name__} has no attributes (attribute_names is empty)")
    channels, size = int(datamodule.image_shape[0]), int(datamodule.image_shape[1])
    meta = {
        "architecture": "lenet5-multilabel",
        "attribute_names": list(names),
        "channels": channels,
        "data_image_size": size,
        "dataset": dataset_name(datamodule),
        "epochs": int(epochs),
        "seed": int(seed),
    }
    target = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = AttributeClassifier(LeNet5(channels, len(names), INPUT_SIZE), meta).to(target)
        _fit(classifier, datamodule, epochs, lr, target, log)
    datamodule.setup("test")
    per_attribute = attribute_accuracy(classifier, datamodule.test_dataloader(), datamodule, target)
    classifier.meta["test_accuracy"] = dict(zip(names, [round(a, 6) for a in per_attribute.tolist()]))
    classifier.meta["mean_test_accuracy"] = float(per_attribute.mean())
    return classifier


def _fit(classifier: AttributeClassifier, datamodule: Any, epochs: int, lr: float, device: torch.device, log: Callable) -> None:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()

    def batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        if isinstance(loader.sampler, DistributedSampler):  # ImageDataModule's ResumableSampler
            loader.sampler.set_epoch(epoch)  # a new shuffle every epoch
        for batch in loader:
            yield _batch(datamodule, batch, device)

    fit_classifier(classifier, batches, F.binary_cross_entropy_with_logits, epochs, len(loader), lr, log=log)
    _frozen(classifier)


# ---------------------------------------------------------------------------------------------
# Command line
