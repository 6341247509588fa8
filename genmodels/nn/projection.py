"""The projection discriminator's end (Miyato & Koyama 2018, arXiv:1802.05637), as StyleGAN2-ADA conditions D.

StyleGAN2-ADA's class-conditional discriminator (Karras et al. 2020, arXiv:2006.06676; official
``DiscriminatorEpilogue`` with ``cmap_dim``) ends like the unconditional one — minibatch stddev,
3x3 conv, dense layer — but its output layer gives a ``cmap_dim`` vector instead of one logit, and
the logit is that vector's inner product with an embedding of the condition, computed by a mapping
network of c alone (``cmap``), scaled by ``1 / sqrt(cmap_dim)`` to keep the logit's scale.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear
from genmodels.nn.mapping import MappingNetwork
from genmodels.nn.minibatch_std import MinibatchStdDev

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """``forward(x (N, C, 4, 4), c (N, c_dim)) -> logits (N,)``.

    Args:
        channels: C, the feature maps at 4x4.
        c_dim: size of the condition (one-hot labels: the number of classes).
        cmap_dim: size of the projection (None: ``channels``, the official default).
        mbstd_group_size: minibatch-stddev group size.
        mapping_layers, mapping_lr_mul: the ``cmap`` mapping network (official: 8 layers, 0.01).
    """

    def __init__(
        self, channels: int, c_dim: int, cmap_dim: int | None = None, mbstd_group_size: int = 4, mapping_layers: int = 8, mapping_lr_mul: float = 0.01
    ) -> None:
        super().__init__()
        if c_dim < 1:
            raise ValueError(f"a projection head needs c_dim >= 1, got {c_dim}")
        self.cmap_dim = cmap_dim or channels
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.dense = EqualizedLinear(channels * 16, channels)
        self.out = EqualizedLinear(channels, self.cmap_dim, gain=1.0)
        self.mapping = MappingNetwork(0, self.cmap_dim, mapping_layers, mapping_lr_mul, c_dim=c_dim)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        x = self.out(F.leaky_relu(self.dense(x.flatten(1)), 0.2))
        return (x * self.mapping(None, c)).sum(dim=1) / math.sqrt(self.cmap_dim)
