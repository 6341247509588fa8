"""StyleGAN2's discriminator end, with StyleGAN2-ADA's projection for class-conditional D.

The 4x4 end of the StyleGAN2 discriminator (official ``DiscriminatorEpilogue``): minibatch stddev,
3x3 conv, dense layer, output layer, every leaky-ReLU layer with StyleGAN2's bias placement
(``scale_bias``, `genmodels.nn.equalized`).

Class-conditional (``c_dim > 0``; Karras et al. 2020, arXiv:2006.06676, after the projection
discriminator of Miyato & Koyama 2018, arXiv:1802.05637): the output layer gives a ``cmap_dim``
vector instead of one logit, and the logit is its inner product with an embedding of the condition
computed by a mapping network of c alone (``cmap``), scaled by ``1 / sqrt(cmap_dim)``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear
from genmodels.nn.mapping import MappingNetwork
from genmodels.nn.minibatch_std import MinibatchStdDev

__all__ = ["DiscriminatorEpilogue"]


class DiscriminatorEpilogue(nn.Module):
    """``forward(x (N, C, 4, 4)[, c (N, c_dim)]) -> logits (N,)``.

    Args:
        channels: C, the feature maps at 4x4.
        c_dim: size of the condition (one-hot labels: the number of classes); 0: unconditional.
        cmap_dim: size of the projection (None: ``channels``, the official default).
        mbstd_group_size: minibatch-stddev group size.
        mapping_layers, mapping_lr_mul: the ``cmap`` mapping network (official: 8 layers, 0.01).
    """

    def __init__(
        self, channels: int, c_dim: int = 0, cmap_dim: Optional[int] = None, mbstd_group_size: int = 4, mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
    ) -> None:
        super().__init__()
        self.cmap_dim = (cmap_dim or channels) if c_dim > 0 else 0
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualizedConv2d(channels + 1, channels, 3, scale_bias=True)
        self.dense = EqualizedLinear(channels * 16, channels, scale_bias=True)
        self.out = EqualizedLinear(channels, self.cmap_dim or 1, gain=1.0)
        self.mapping = MappingNetwork(0, self.cmap_dim, mapping_layers, mapping_lr_mul, c_dim=c_dim, scale_bias=True) if c_dim > 0 else None

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        x = self.out(F.leaky_relu(self.dense(x.flatten(1)), 0.2))
        if self.mapping is None:
            return x.flatten()
        if c is None:
            raise ValueError(f"this discriminator is class-conditional: it needs c of shape (N, {self.mapping.c_dim})")
        return (x * self.mapping(None, c)).sum(dim=1) / math.sqrt(self.cmap_dim)
