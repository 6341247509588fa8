"""Small in-memory data for model tests that do not need a datamodule."""

import torch
from torch.utils.data import DataLoader, Dataset


class RandomImages(Dataset):
    """Deterministic images in [-1, 1], returned as dict batches like the datamodules'."""

    def __init__(self, n: int = 32, shape: tuple[int, int, int] = (1, 16, 16), seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand((n, *shape), generator=g) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i]}


def loader(n: int = 32, shape=(1, 16, 16), batch_size: int = 8) -> DataLoader:
    return DataLoader(RandomImages(n, shape), batch_size=batch_size, shuffle=False, drop_last=True)
