"""Minibatch standard deviation (Karras et al. 2018, arXiv:1710.10196, Sec. 3).

Near D's end: split the batch into groups of ``group_size``, take the standard deviation of
every feature at every position over each group, average it over features and positions into
one number per group, and append it as a constant extra feature map to every sample of the
group. D can then see how varied a batch is, which counters mode collapse.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MinibatchStdDev"]


class MinibatchStdDev(nn.Module):
    """(N, C, H, W) -> (N, C + 1, H, W).

    A batch not divisible by ``group_size`` (a last validation batch) uses the largest group size
    below it that divides N, so evaluation never fails on a ragged batch.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size, self.eps = group_size, eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = next(g for g in range(min(self.group_size, n), 0, -1) if n % g == 0)
        # (G, N/G, C, H, W): sample i falls in group i mod (N/G), as in the official layout.
        grouped = x.float().reshape(group, n // group, c, h, w)
        std = (grouped.var(dim=0, unbiased=False) + self.eps).sqrt()  # (N/G, C, H, W)
        stat = std.mean(dim=(1, 2, 3))  # (N/G,): one number per group
        feature = stat.repeat(group)[:, None, None, None].expand(n, 1, h, w).to(x.dtype)
        return torch.cat([x, feature], dim=1)
