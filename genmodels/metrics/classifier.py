"""A domain classifier as feature extractor for MNIST-like data ("Fréchet LeNet Distance").

Inception features are a poor fit for 28 px grayscale digits (pytorch-fid #12; TTUR #24 advises
a classifier trained on the data). This module provides one: a LeNet-5-like CNN (LeCun et al.
1998, "Gradient-based learning applied to document recognition"; ReLU and max-pooling instead of
scaled tanh and subsampling), trained by ``genmodels train-classifier`` on a datamodule, and
saved with its metadata as a weights-only file whose SHA-256 pins it. Its 84-d penultimate layer
gives the features of FID/KID/precision-recall and its class logits those of IS; metrics computed
with it are named ``*_lenet`` and are comparable only between runs that used the same file (the
hash is in every protocol).

`load_classifier` also serves other uses of a trained classifier, such as counting the digit
classes among generated samples (``classifier.predict(samples)``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from genmodels.atomic import atomic_write, atomic_write_text
from genmodels.checkpoints import load_checkpoint_safely
from genmodels.metrics.extractors import (
    Features,
    FeatureExtractor,
    PathLike,
    check_images,
    check_sha256,
    file_sha256,
    quantize,
    register_extractor,
)
from genmodels.errors import InvalidValue
from genmodels.protocols import dataset_classes, dataset_name

__all__ = ["LeNet5", "DomainClassifier", "load_classifier", "train_classifier", "save_classifier", "fit_classifier", "FORMAT"]

FORMAT = "genmodels.classifier/v1"
SIZES = (28, 32)


class LeNet5(nn.Module):
    """conv 5x5 (6) -> max-pool -> conv 5x5 (16) -> max-pool -> fc 120 -> fc 84 -> fc classes.

    Args:
        channels: input channels.
        num_classes: number of classes.
        image_size: 28 (first convolution padded by 2, as LeNet-5 on MNIST) or 32.
    """

    def __init__(self, channels: int = 1, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        if image_size not in SIZES:
            raise InvalidValue(f"LeNet5 takes 28 or 32 px inputs, got {image_size}")
        self.body = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if image_size == 28 else 0), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, S, S) -> (84-d features, logits)."""
        features = self.body(x)
        return features, self.head(features)


class DomainClassifier(FeatureExtractor):
    """A trained `LeNet5` with its metadata: feature extractor (``lenet``) and classifier.

    Images are quantized to uint8 pixels (as saved samples would be) and resized (bilinear,
    antialiased) to the classifier's input size when they differ from it.

    Args:
        net: the network.
        meta: ``image_size``, ``channels``, ``num_classes`` and provenance (dataset, test accuracy).
        sha256: hash of the file it came from ("" for an unsaved classifier).
    """

    name = "lenet"
    num_features = 84

    def __init__(self, net: LeNet5, meta: dict[str, Any], sha256: str = "") -> None:
        super().__init__()
        self.net, self.meta, self.sha256 = net, dict(meta), sha256
        self.image_size = int(meta["image_size"])
        self.channels = (int(meta["channels"]),)
        self.num_logits = int(meta["num_classes"])
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, images: Tensor) -> Tensor:
        """Checked images -> float in [-1, 1] on the uint8 grid, at the classifier's size."""
        check_images(images, self.channels)
        x = quantize(images).to(torch.float32) / 127.5 - 1
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return x

    def forward(self, images: Tensor) -> Features:
        with torch.no_grad():
            features, logits = self.net(self.preprocess(images))
        return Features(features, logits)

    @torch.no_grad()
    def predict_proba(self, images: Tensor, batch_size: int = 1024) -> Tensor:
        """Class probabilities ``(N, num_classes)`` for images in [-1, 1] (or uint8)."""
        return torch.cat([self(chunk).logits.softmax(dim=1) for chunk in images.split(batch_size)])

    def predict(self, images: Tensor, batch_size: int = 1024) -> Tensor:
        """Predicted labels ``(N,)`` int64 for images in [-1, 1] (or uint8)."""
        return self.predict_proba(images, batch_size).argmax(dim=1)

    def protocol(self) -> dict[str, Any]:
        keep = ("dataset", "image_size", "channels", "num_classes", "test_accuracy")
        return {
            **super().protocol(),
            "network": "LeNet-5-like domain classifier",
            "features": "penultimate fc (84) for FID/KID/PR; class logits for IS",
            "preprocessing": f"uint8 rounding; bilinear resize to {self.image_size} when needed",
            "classifier": {k: self.meta[k] for k in keep if k in self.meta},
        }


# ---------------------------------------------------------------------------------------------
# Files


def write_pinned(payload: dict[str, Any], path: PathLike) -> str:
    """Write ``payload`` weights-only (temp file + rename) and a ``<path>.sha256`` sidecar; returns the hash.

    Shared by the files the apps pin by hash (domain and attribute classifiers): a crash mid-write
    leaves the previous file, and a later load can check the content against the sidecar.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))
    digest = file_sha256(path)
    atomic_write_text(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n")
    return digest


def read_pinned(path: PathLike, sha256: Optional[str], map_location: Any, file_format: str, what: str) -> tuple[dict, str]:
    """Open a file written by `write_pinned` with ``weights_only=True``: (payload, its SHA-256).

    ``sha256`` (or a prefix) pins the content; without it a ``<path>.sha256`` sidecar is checked if
    present. Raises CheckpointError (missing, unreadable, unsafe) or ValueError (hash mismatch, or a
    payload whose ``format`` is not ``file_format``; ``what`` names the expected kind of file).
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if sha256 is None and sidecar.is_file():
        sha256 = sidecar.read_text().split()[0]
    checkpoint = load_checkpoint_safely(path, map_location=map_location)
    digest = check_sha256(path, sha256)
    if checkpoint.get("format") != file_format:
        raise InvalidValue(f"{path} is not {what} (format {file_format})")
    return checkpoint, digest


def save_pinned_classifier(classifier: nn.Module, path: PathLike, file_format: str) -> str:
    """Write ``classifier``'s ``meta`` and ``net`` weights as a ``file_format`` file (temp + rename) with
    a ``<path>.sha256`` sidecar; records and returns the hash (domain and attribute classifiers)."""
    payload = {"format": file_format, "meta": classifier.meta, "state_dict": classifier.net.state_dict()}
    classifier.sha256 = write_pinned(payload, path)
    return classifier.sha256


def save_classifier(classifier: DomainClassifier, path: PathLike) -> str:
    """Write a weights-only file (temp + rename) and a ``<path>.sha256`` sidecar; returns the hash."""
    return save_pinned_classifier(classifier, path, FORMAT)


def load_classifier(path: PathLike, sha256: Optional[str] = None, map_location: Any = "cpu") -> DomainClassifier:
    """A classifier saved by ``genmodels train-classifier`` (opened with ``weights_only=True``).

    Args:
        path: the file.
        sha256: expected hash (or prefix); without it, a ``<path>.sha256`` sidecar is checked if present.
        map_location: device to load to.

    Example (mode coverage of samples)::

        classifier = load_classifier("lenet-digits.pt")
        labels = classifier.predict(model.sample(1000))
        classes_seen = labels.unique().numel()

    Raises:
        CheckpointError: missing, unreadable or unsafe file.
        ValueError: not a classifier file, or a hash mismatch.
    """
    checkpoint, digest = read_pinned(path, sha256, map_location, FORMAT, "a classifier written by `genmodels train-classifier`")
    meta = checkpoint["meta"]
    with torch.random.fork_rng(devices=[]):  # the initialization is overwritten: leave the global RNG alone
        net = LeNet5(int(meta["channels"]), int(meta["num_classes"]), int(meta["image_size"]))
    net.load_state_dict(checkpoint["state_dict"])
    return DomainClassifier(net, meta, digest).to(map_location)


# ---------------------------------------------------------------------------------------------
# Training


def _input_size(image_size: int) -> int:
    """The LeNet input size for data of ``image_size``: 28 stays 28, everything else goes to 32."""
    return 28 if image_size == 28 else 32


def random_shift(images: Tensor, generator: torch.Generator, pad: int = 2) -> Tensor:
    """Translate each image by up to ``pad`` pixels, filling with black (-1): the augmentation.

    Handwriting is not centred to the pixel; shifted copies take held-out digits accuracy from
    about 97% to 99% in the same number of epochs.
    """
    size = images.shape[-1]
    padded = F.pad(images, (pad,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * pad + 1, (len(images), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(offsets)])


def _images(datamodule: Any, batch: dict[str, Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    # Non-tensor entries (a text batch's captions) stay on the host.
    batch = datamodule.on_after_batch_transfer({k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}, 0)
    return batch["image"], batch["label"]


@torch.no_grad()
def accuracy(classifier: DomainClassifier, loader: Any, datamodule: Any, device: torch.device) -> float:
    """Top-1 accuracy over a dataloader of ``{"image", "label"}`` batches."""
    correct = total = 0
    for batch in loader:
        images, labels = _images(datamodule, batch, device)
        correct += (classifier.predict(images) == labels).sum().item()
        total += labels.numel()
    return correct / max(total, 1)


def train_classifier(
    datamodule: Any,
    epochs: int = 20,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> DomainClassifier:
    """Train a `LeNet5` on ``datamodule``'s train split; its test accuracy goes into the metadata.

    Runs under `torch.random.fork_rng` (initialization, shuffling, and the seed every DataLoader
    iterator draws), so the caller's global RNG is left as it was.

    Args:
        datamodule: a labelled `datamodules.ImageDataModule` (digits, MNIST, Fashion-MNIST, ...).
        epochs: passes over the training split (each image randomly shifted by up to 2 px).
        lr: Adam learning rate (cosine-annealed to 0).
        seed: seed of the initialization and of the augmentation.
        device: where to train.
        log: receives one progress line per epoch.
    """
    num_classes = dataset_classes(datamodule)
    if num_classes < 2:
        raise InvalidValue(f"{type(datamodule).__name__} has no class labels (num_classes={num_classes})")
    channels, image_size = datamodule.image_shape[0], datamodule.image_shape[1]
    meta = {
        "architecture": "lenet5",
        "image_size": _input_size(image_size),
        "channels": int(channels),
        "num_classes": num_classes,
        "dataset": dataset_name(datamodule),
        "data_image_size": int(image_size),
        "epochs": int(epochs),
        "augmentation": "random shifts of up to 2 px",
        "seed": int(seed),
    }
    target = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DomainClassifier(LeNet5(channels, num_classes, meta["image_size"]), meta).to(target)
        _fit(classifier, datamodule, epochs, lr, target, torch.Generator().manual_seed(seed), log)
        datamodule.setup("test")
        classifier.meta["test_accuracy"] = accuracy(classifier, datamodule.test_dataloader(), datamodule, target)
    return classifier


def fit_classifier(
    net: nn.Module,
    batches: Callable[[int], Iterable[tuple[Any, Tensor]]],
    loss: Callable[[Any, Tensor], Tensor],
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    cosine: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> nn.Module:
    """Train ``net`` with Adam on ``loss(net(inputs), targets)``: the one classifier loop.

    Used by the domain classifier (`train_classifier`), the attribute classifier
    (`genmodels.apps.attributes`) and the augmentation experiment (`genmodels.apps.augment`).

    Args:
        net: the network, on the device the batches are on.
        batches: ``batches(epoch)`` yields the ``(inputs, targets)`` of one epoch (shuffled and
            augmented as the caller wants).
        loss: the criterion on ``net``'s output and the targets.
        epochs: passes; ``steps_per_epoch`` sizes the cosine schedule.
        lr: Adam learning rate, cosine-annealed to 0 over all steps when ``cosine``.
        log: receives one line per epoch with the mean training loss (read once per epoch: no host
            sync per step).

    Returns ``net`` in eval mode.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    total_steps = max(1, epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total_steps))) if cosine else None
    net.train()
    for epoch in range(epochs):
        total: Optional[Tensor] = None  # summed on the device: read once per epoch
        count = 0
        for inputs, targets in batches(epoch):
            value = loss(net(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total = value.detach() if total is None else total + value.detach()
            count += 1
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: train loss {(float(total) if total is not None else 0.0) / max(count, 1):.4f}")
    return net.eval()


def _fit(
    classifier: DomainClassifier,
    datamodule: Any,
    epochs: int,
    lr: float,
    device: torch.device,
    augmentation: torch.Generator,
    log: Callable[[str], None],
) -> None:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()

    def batches(epoch: int) -> Iterable[tuple[Tensor, Tensor]]:
        if isinstance(loader.sampler, DistributedSampler):  # ImageDataModule's ResumableSampler
            loader.sampler.set_epoch(epoch)  # a new shuffle every epoch
        for batch in loader:
            images, labels = _images(datamodule, batch, device)
            yield random_shift(classifier.preprocess(images), augmentation), labels

    classifier.net.requires_grad_(True)
    fit_classifier(classifier.net, batches, lambda out, labels: F.cross_entropy(out[1], labels), epochs, len(loader), lr,
                   log=log)
    classifier.net.requires_grad_(False)
    classifier.eval()


@register_extractor("classifier")
def build_classifier(argument: str, weights: Optional[PathLike], sha256: Optional[str]) -> DomainClassifier:
    """Spec ``classifier:PATH``: the domain classifier saved at PATH (``weights`` does not apply)."""
    if not argument:
        raise InvalidValue("the classifier extractor needs a file: 'classifier:PATH' (from genmodels train-classifier)")
    return load_classifier(argument, sha256=sha256)
