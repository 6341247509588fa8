"""Per-layer noise injection (Karras et al. 2019, arXiv:1812.04948, Sec. 3.2, Fig. 1b "B").

A single-channel image of uncorrelated Gaussian noise, shared by all channels of a layer, is added
to the layer's output scaled by a learned per-channel factor (initialized at 0, so a fresh network
is deterministic). StyleGAN2 uses one scalar per layer (``channels=1``, broadcast).
The stochastic variation this models (hair placement, freckles) is then local and style-free.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["NoiseInjection"]


class NoiseInjection(nn.Module):
    """``forward(x (N, C, H, W), noise=None) -> x + scale * noise``; noise (N, 1, H, W) drawn if not given."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.weight.view(1, -1, 1, 1).to(x.dtype) * noise
