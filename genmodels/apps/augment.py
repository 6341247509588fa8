"""Does adding generated images help a classifier trained on little real data?

Protocol (one table, every row trained the same way):

1. Real data: a stratified, seeded ``--real-fraction`` of the datamodule's train split (each class
   keeps that share of its images, at least one), the "little data" regime.
2. Generated data: ``--num-generated`` images (default: as many as the real images left out, so
   real + generated is as large as the full split) with balanced, shuffled labels. A conditional
   generator (``num_classes`` > 0) is asked for each image's class, and the image carries the
   label it was conditioned on. An unconditional generator needs ``--labeler``, a classifier
   file from ``genmodels train-classifier``, whose predictions become the labels; without one the
   command refuses (there would be no labels).
3. A small CNN (`SmallCNN`) is trained from the same seed for a fixed number of optimizer steps
   (``--steps``, not epochs, so a larger training set does not also buy more updates) on: real
   only, real + generated (batches drawn uniformly from the union), generated only, and all real
   images (the ceiling). Held-out accuracy is measured on the datamodule's test split, averaged
   over ``--repeats`` seeds (mean and standard deviation).

Images enter the classifier as uint8 pixels mapped to [-1, 1], real and generated alike (generated
images are quantized as a saved PNG would be). The table says whether augmentation helped on this
data; the tests check that the pipeline is right, not that it helps.

Example::

    genmodels augment --gen runs/cgan/digits/checkpoints/last.ckpt --data digits --real-fraction 0.1
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.apps.generation import generate, num_classes
from genmodels.errors import UserError, InvalidValue
from genmodels.images import to_uint8
from genmodels.metrics.classifier import fit_classifier
from genmodels.protocols import ImageSplits, dataset_classes, dataset_name

__all__ = [
    "run_augmentation",
    "stratified_subset",
    "generated_dataset",
    "SmallCNN",
    "train_classifier",
    "accuracy",
    "format_table",
    "AugmentationResult",
]


# ---------------------------------------------------------------------------------------------
# Data


def resolve_datamodule(spec: str, image_size: int, data_dir: Optional[str] = None) -> Any:
    """A datamodule from an experiment/config YAML, or by name (``digits``, ``MNISTDataModule``, ...)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from genmodels.metrics.commands import load_datamodule  # only `datamodules` classes are built

        return load_datamodule(path)
    from genmodels.resolve import datamodule_class

    return datamodule_class(spec, "--data")(data_dir=data_dir, image_size=image_size)


def stratified_subset(labels: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Sorted indices of ``fraction`` of each class's examples (at least one per class), seeded."""
    if not 0 < fraction <= 1:
        raise InvalidValue(f"--real-fraction must be in (0, 1], got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        keep = max(1, round(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=generator)[:keep]])
    return torch.cat(chosen).sort().values


def balanced_labels(num: int, classes: int, seed: int = 0) -> Tensor:
    """``num`` labels, each class ``num / classes`` times (+-1), in a seeded random order."""
    labels = torch.arange(num) % classes
    return labels[torch.randperm(num, generator=torch.Generator().manual_seed(seed))]


@torch.no_grad()
def generated_dataset(
    model: Any,
    num: int,
    classes: int,
    seed: int = 0,
    truncation: Optional[float] = None,
    labeler: Any = None,
    batch_size: int = 256,
) -> tuple[Tensor, Tensor]:
    """``num`` generated uint8 images and their labels.

    A conditional ``model`` is conditioned on balanced labels, which the images keep; otherwise
    ``labeler.predict(images)`` labels them. Raises ValueError when neither gives labels.
    """
    model_classes = num_classes(model)
    if model_classes:
        if model_classes != classes:
            raise InvalidValue(f"the generator has {model_classes} classes but the data has {classes}")
        labels = balanced_labels(num, classes, seed)
        images = generate(model, num, seed, condition=labels, truncation=truncation, batch_size=batch_size)
        return to_uint8(images), labels
    if labeler is None:
        raise InvalidValue(
            f"{type(model).__name__} is unconditional, so its images have no labels: use a class-conditional "
            "generator, or pass --labeler with a classifier from `genmodels train-classifier`"
        )
    images = generate(model, num, seed, truncation=truncation, batch_size=batch_size)
    return to_uint8(images), labeler.predict(images).cpu().long()


# ---------------------------------------------------------------------------------------------
# Classifier


class SmallCNN(nn.Module):
    """Three 3x3 conv + ReLU stages (16, 32, 64 channels, max-pooling between), global average pool, linear."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes),
        )  # fmt: skip

    def forward(self, pixels: Tensor) -> Tensor:
        """uint8 pixels (N, C, H, W) -> class logits; any image size."""
        return self.net(pixels.float() / 127.5 - 1)


def _batches(num: int, batch_size: int, steps: int, generator: torch.Generator) -> Any:
    """``steps`` index batches from reshuffled passes over ``range(num)``."""
    order, position = torch.randperm(num, generator=generator), 0
    for _ in range(steps):
        if position + batch_size > num:
            order, position = torch.randperm(num, generator=generator), 0
        yield order[position : position + batch_size]
        position += batch_size


def train_classifier(
    images: Tensor,
    labels: Tensor,
    classes: int,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
) -> SmallCNN:
    """A `SmallCNN` trained with Adam for ``steps`` steps; leaves the global RNG as it was."""
    if len(images) == 0:
        raise InvalidValue("no training images")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN(images.shape[1], classes).to(device)
    generator = torch.Generator().manual_seed(seed)

    def batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:  # one "epoch" of `steps` reshuffled batches
        for index in _batches(len(images), min(batch_size, len(images)), steps, generator):
            yield images[index].to(device), labels[index].to(device)

    return fit_classifier(net, batches, F.cross_entropy, epochs=1, steps_per_epoch=steps, lr=lr, cosine=False)


@torch.no_grad()
def accuracy(net: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 512, device: str = "cpu") -> float:
    """Top-1 accuracy of ``net`` on uint8 ``images``."""
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = net(images[start : start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(len(images), 1)


# ---------------------------------------------------------------------------------------------
# The experiment


@dataclass
class Row:
    name: str
    num_real: int
    num_generated: int
    accuracies: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


@dataclass
class AugmentationResult:
    rows: list[Row]
    protocol: dict[str, Any]

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)


def run_augmentation(
    model: Any,
    datamodule: Any,
    real_fraction: float = 0.1,
    num_generated: Optional[int] = None,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    repeats: int = 1,
    seed: int = 0,
    truncation: Optional[float] = None,
    labeler: Any = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> AugmentationResult:
    """Train the four classifiers of the module docstring and measure them on the test split."""
    classes = dataset_classes(datamodule)
    if classes < 2:
        raise InvalidValue(f"{type(datamodule).__name__} has no class labels; augmentation needs a labelled dataset")
    if tuple(datamodule.image_shape) != tuple(model.image_shape):
        raise InvalidValue(f"the generator makes {tuple(model.image_shape)} images but the data is {tuple(datamodule.image_shape)}")
    datamodule.setup(None)
    if not isinstance(datamodule, ImageSplits):
        raise UserError(f"{type(datamodule).__name__} cannot list its images; use a datamodules.ImageDataModule")
    train_images, train_labels = datamodule.split_images("train")
    test_images, test_labels = datamodule.split_images("test")
    subset = stratified_subset(train_labels, real_fraction, seed)
    real_images, real_labels = train_images[subset], train_labels[subset]
    count = len(train_images) - len(subset) if num_generated is None else num_generated
    if count < 1:
        raise InvalidValue(f"--num-generated must be >= 1, got {count}")
    log(f"generating {count} images with {type(model).__name__} ...")
    fake_images, fake_labels = generated_dataset(model, count, classes, seed, truncation, labeler)
    training_sets = {
        "real only": (real_images, real_labels, len(real_images), 0),
        "real + generated": (torch.cat([real_images, fake_images]), torch.cat([real_labels, fake_labels]), len(real_images), count),
        "generated only": (fake_images, fake_labels, 0, count),
        "all real (ceiling)": (train_images, train_labels, len(train_images), 0),
    }
    rows = []
    for name, (images, labels, num_real, num_fake) in training_sets.items():
        row = Row(name, num_real, num_fake)
        for repeat in range(repeats):
            net = train_classifier(images, labels, classes, steps, batch_size, lr, seed + repeat, device)
            row.accuracies.append(accuracy(net, test_images, test_labels, device=device))
        log(f"{name:20s} accuracy {row.mean:.4f}")
        rows.append(row)
    protocol = {
        "real_fraction": real_fraction, "train_split_size": len(train_images), "test_split_size": len(test_images),
        "steps": steps, "batch_size": batch_size, "lr": lr, "repeats": repeats, "seed": seed,
        "truncation": truncation, "labels": "conditioned" if num_classes(model) else "labeler",
        "generator": type(model).__name__, "dataset": dataset_name(datamodule),
    }  # fmt: skip
    return AugmentationResult(rows, protocol)


def format_table(result: AugmentationResult) -> str:
    """The rows as a fixed-width table, plus the gain of real + generated over real only."""
    lines = [f"{'training data':22s} {'real':>6s} {'generated':>10s} {'test accuracy':>16s}"]
    for row in result.rows:
        spread = f" ± {row.std:.3f}" if len(row.accuracies) > 1 else ""
        lines.append(f"{row.name:22s} {row.num_real:6d} {row.num_generated:10d} {row.mean:10.4f}{spread:>6s}")
    gain = result.row("real + generated").mean - result.row("real only").mean
    lines.append(f"real + generated vs real only: {100 * gain:+.1f} points (mean of {result.protocol['repeats']} seeds)")
    return "\n".join(lines)
