"""Shared pieces of the datamodule tests: a synthetic datamodule whose batches name their samples.

The writers of real on-disk formats (IDX, CIFAR pickles) are in ``formats.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from datamodules.base import ImageDataModule


class IndexedDataModule(ImageDataModule):
    """Synthetic datamodule whose image ``i`` has every pixel equal to ``i``: batches name their indices."""

    dataset_name = "indexed"
    _channels = 1
    _num_classes = 10

    def __init__(self, num_train: int = 40, batch_size: int = 4, seed: int = 0, num_workers: int = 0) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers, image_size=8)
        self.num_train = num_train

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        num = self.num_train if split == "train" else 12
        index = torch.arange(num)
        images = index.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).contiguous()
        return images, index % 10


def batch_indices(batch: dict) -> list[int]:
    """Sample indices of an `IndexedDataModule` batch, before or after the [-1, 1] conversion."""
    image = batch["image"][:, 0, 0, 0]
    if image.dtype != torch.uint8:
        image = ((image + 1) * 127.5).round()
    return image.long().tolist()


def fake_trainer(training: bool = True, world_size: int = 1, global_rank: int = 0) -> SimpleNamespace:
    """The few trainer attributes the datamodule reads, without running a Trainer."""
    return SimpleNamespace(training=training, world_size=world_size, global_rank=global_rank)


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """A GENMODELS_DATA set on the machine must not change where the tests look."""
    monkeypatch.delenv("GENMODELS_DATA", raising=False)
