"""Some classes of a labelled dataset: `ClassSubsetDataModule`.

Anomaly detection trains on "normal" classes only (e.g. digits 0-4) and tests on all of them. The
wrapper builds another datamodule (named by class path, with the usual arguments plus
``dataset_args``) and keeps, in every split, the images whose label is in ``classes``. Labels keep
their original values (a digit 7 stays 7), so ``num_classes`` is the wrapped dataset's.

Everything else (loaders, [-1, 1] conversion, exact mid-epoch resume) is the in-memory base
class's, so the wrapped dataset is read with its ``read_split``, i.e. held in memory.

Example (YAML)::

    data:
      class_path: datamodules.ClassSubsetDataModule
      init_args:
        dataset: datamodules.DigitsDataModule
        classes: [0, 1, 2, 3, 4]
        image_size: 32
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from datamodules.base import ImageDataModule
from genmodels.errors import InvalidValue

__all__ = ["ClassSubsetDataModule", "import_datamodule"]


def import_datamodule(class_path: str) -> type[ImageDataModule]:
    """The `ImageDataModule` class a name spells, resolved against the allowlist as text before any import."""
    from genmodels.resolve import datamodule_class

    cls = datamodule_class(class_path, "dataset")
    if not issubclass(cls, ImageDataModule) or cls is ClassSubsetDataModule:
        raise InvalidValue(f"{class_path!r} cannot be wrapped by ClassSubsetDataModule (e.g. datamodules.MNISTDataModule)")
    return cls


class ClassSubsetDataModule(ImageDataModule):
    """The images of ``classes`` only, from another labelled datamodule.

    Args:
        dataset: class path of the wrapped datamodule, e.g. ``datamodules.MNISTDataModule``.
        classes: labels to keep; ``None`` keeps every class (no filtering).
        data_dir, batch_size, num_workers, image_size, download, seed, pin_memory: as for every
            `ImageDataModule`; passed to the wrapped datamodule too.
        dataset_args: further arguments of the wrapped datamodule (e.g. ``{val_fraction: 0.2}``).
        max_train_images: train on this many of the kept images only, stratified over the kept
            classes (see `ImageDataModule`).
        random_flip: mirror training images left-right at random (see `ImageDataModule`).
    """

    def __init__(
        self,
        dataset: str = "datamodules.DigitsDataModule",
        classes: Optional[list[int]] = None,
        data_dir: Optional[str] = None,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
        download: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        dataset_args: Optional[dict[str, Any]] = None,
        max_train_images: Optional[int] = None,
        random_flip: bool = False,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory,
                         max_train_images=max_train_images, random_flip=random_flip)
        self.dataset = import_datamodule(dataset)(
            data_dir=data_dir,
            batch_size=batch_size,
            num_workers=num_workers,
            image_size=image_size,
            download=download,
            seed=seed,
            pin_memory=pin_memory,
            **(dataset_args or {}),
        )
        self.classes = None if classes is None else _check_classes(classes, self.dataset)
        kept = "all classes" if self.classes is None else f"classes {self.classes}"
        self.dataset_name = f"{self.dataset.dataset_name} ({kept})"

    @property
    def channels(self) -> int:
        return self.dataset.channels

    @property
    def layout_found(self) -> str:  # type: ignore[override]
        """The wrapped datamodule's layout (known once it has read its files)."""
        return self.dataset.layout_found

    @property
    def root_found(self):  # type: ignore[override]
        return self.dataset.root_found

    @property
    def num_classes(self) -> int:
        """The wrapped dataset's number of classes (labels are not renumbered)."""
        return self.dataset.num_classes

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.dataset.read_split(split)
        if self.classes is None:
            return images, labels
        keep = torch.isin(labels, torch.tensor(self.classes, dtype=labels.dtype))
        if not keep.any():
            raise InvalidValue(f"the {split} split of {self.dataset.dataset_name} has no image of classes {self.classes}")
        return images[keep], labels[keep]

    def download_files(self) -> None:
        self.dataset.download_files()


def _check_classes(classes: list[int], dataset: ImageDataModule) -> list[int]:
    if dataset.num_classes == 0:
        raise InvalidValue(f"{type(dataset).__name__} has no class labels, so classes cannot be selected")
    values = [int(c) for c in classes]
    bad = [c for c in values if not 0 <= c < dataset.num_classes]
    if not values or bad or len(set(values)) != len(values):
        raise InvalidValue(
            f"classes must be distinct labels in 0..{dataset.num_classes - 1} of {type(dataset).__name__}, got {list(classes)} "
            "(set them with --data.init_args.classes '[0, 1, 2]')"
        )
    return sorted(values)
