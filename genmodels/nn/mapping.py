"""StyleGAN's mapping network f: Z -> W (Karras et al. 2019, arXiv:1812.04948, Sec. 2, Fig. 1b).

z is normalized to the unit hypersphere's scale (`PixelNorm`), then passed through an MLP of
``num_layers`` (8) equalized fully connected layers with leaky ReLU (0.2). Every layer learns
``lr_mul`` (0.01) times slower than the synthesis network (App. C), which keeps W stable.

Class-conditional (``c_dim > 0``, StyleGAN2-ADA, Karras et al. 2020, arXiv:2006.06676, and its
official ``MappingNetwork``): the condition c (one-hot labels) is embedded by a linear layer
(``embed``, ordinary learning rate), normalized like z, and concatenated to the normalized z before
the MLP. With ``z_dim = 0`` the network maps c alone: the conditional discriminator's ``cmap``.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
import torch
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedLinear
from genmodels.nn.normalization import PixelNorm

__all__ = ["MappingNetwork"]


class MappingNetwork(nn.Module):
    """``forward(z (N, z_dim)[, c (N, c_dim)]) -> w (N, w_dim)``.

    Args:
        z_dim: size of z (0: the network maps the condition only).
        w_dim: size of w, and of the hidden layers.
        num_layers: fully connected layers (8).
        lr_mul: their learning-rate multiplier (0.01).
        c_dim: size of the condition (0: unconditional).
        embed_features: size of c's embedding (None: ``w_dim``, as the official default).
        scale_bias: StyleGAN2's bias placement (gain after bias and activation; `genmodels.nn.equalized`).
    """

    def __init__(
        self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8, lr_mul: float = 0.01, c_dim: int = 0, embed_features: Optional[int] = None,
        scale_bias: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"mapping num_layers must be >= 1, got {num_layers}")
        if z_dim <= 0 and c_dim <= 0:
            raise ValueError("a mapping network needs z_dim > 0 or c_dim > 0")
        self.z_dim, self.w_dim, self.c_dim = z_dim, w_dim, c_dim
        self.normalize = PixelNorm()
        embed = (embed_features or w_dim) if c_dim > 0 else 0
        self.embed = EqualizedLinear(c_dim, embed, gain=1.0) if c_dim > 0 else None
        sizes = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul, scale_bias=scale_bias) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, z: Optional[Tensor], c: Optional[Tensor] = None) -> Tensor:
        parts = [self.normalize(z)] if self.z_dim > 0 else []
        if self.embed is not None:
            if c is None:
                raise ValueError(f"this mapping network is class-conditional: it needs c of shape (N, {self.c_dim})")
            parts.append(self.normalize(self.embed(c.to(self.embed.weight.dtype))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        return x
