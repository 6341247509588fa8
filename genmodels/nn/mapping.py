"""StyleGAN's mapping network f: Z -> W (Karras et al. 2019, arXiv:1812.04948, Sec. 2, Fig. 1b).

z is normalized to the unit hypersphere's scale (`PixelNorm`), then passed through an MLP of
``num_layers`` (8) equalized fully connected layers with leaky ReLU (0.2). Every layer learns
``lr_mul`` (0.01) times slower than the synthesis network (App. C), which keeps W stable.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedLinear
from genmodels.nn.normalization import PixelNorm

__all__ = ["MappingNetwork"]


class MappingNetwork(nn.Module):
    """``forward(z (N, z_dim)) -> w (N, w_dim)``."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"mapping num_layers must be >= 1, got {num_layers}")
        self.z_dim, self.w_dim = z_dim, w_dim
        self.normalize = PixelNorm()
        sizes = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, z: Tensor) -> Tensor:
        x = self.normalize(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        return x
