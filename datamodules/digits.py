"""UCI handwritten digits (8x8) as shipped inside scikit-learn: a dataset that needs no download.

Dataset: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository, 1998 (the test part of it, 1797 images), loaded with
`sklearn.datasets.load_digits`. Pixels are counts 0..16 of a 4x4 block of a 32x32 bitmap; they are
mapped to uint8 with ``round(v * 255 / 16)`` and upsampled from 8x8 to ``image_size``.

The set has no official split: a fixed, seeded 10% hold-out serves as both val and test. Its seed
is a constant, not the shuffling ``seed``, so runs with different seeds are evaluated on the same
images. Useful for smoke tests, demos and CI, not for reported numbers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from datamodules.base import ImageDataModule
from genmodels.errors import InvalidValue

# Fixed so the hold-out never changes between runs or with the training `seed`.
_SPLIT_SEED = 1797


@lru_cache(maxsize=1)  # parsed once per process, not once per split; callers index (copy) it
def load_digits_uint8() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as uint8 (N, 1, 8, 8) in 0..255 and int64 labels (N,)."""
    from sklearn.datasets import load_digits  # imported here: only this dataset needs sklearn

    digits = load_digits()
    counts = torch.from_numpy(digits.images).to(torch.float64)
    images = (counts * 255 / 16).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(digits.target).to(torch.int64)
    return images, labels


def holdout_indices(
    num_samples: int, val_fraction: float, seed: int = _SPLIT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (train, holdout) indices of a seeded random split; the hold-out has ``round(n * f)``."""
    permutation = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    num_holdout = round(num_samples * val_fraction)
    return permutation[num_holdout:].sort().values, permutation[:num_holdout].sort().values


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1797 8x8 handwritten digits, upsampled; 1 channel, 10 classes, no download.

    Args:
        data_dir: accepted for a uniform interface; unused (the data ships with scikit-learn).
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes.
        image_size: side of the square images (the native size is 8).
        download: accepted for a uniform interface; unused.
        seed: seed of the training order.
        pin_memory: pin batches for faster host-to-GPU copies.
        on_device: keep the training split on the training device (see `ImageDataModule`).
        val_fraction: share of the images held out for val (= test), in (0, 1).
        max_train_images: train on this many images only, class-stratified (see `ImageDataModule`).
        random_flip: mirror training images left-right at random (see `ImageDataModule`).
    """

    dataset_name = "digits"
    layout_found = "bundled with scikit-learn (sklearn.datasets.load_digits), no files"
    _channels = 1
    _num_classes = 10

    def __init__(self, val_fraction: float = 0.1, **kwargs: Any) -> None:
        """``val_fraction`` is this datamodule's own; ``kwargs`` are `ImageDataModule`'s."""
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise InvalidValue(
                f"val_fraction must be a number in (0, 1), got {val_fraction!r} "
                "(set it with --data.init_args.val_fraction 0.1)"
            )
        super().__init__(**kwargs)
        self.val_fraction = float(val_fraction)

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = load_digits_uint8()
        train, holdout = holdout_indices(len(labels), self.val_fraction)
        index = train if split == "train" else holdout
        return images[index], labels[index]
