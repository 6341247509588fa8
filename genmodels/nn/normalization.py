"""Feature normalizations of the progressive-growing and style-based generators.

- `PixelNorm`: pixelwise feature vector normalization, b = a / sqrt(mean_j a_j^2 + eps)
  (Karras et al. 2018, arXiv:1710.10196, Sec. 4.2, Eq. in text), applied after each conv in G and
  to the latent z in StyleGAN's mapping network.
- `AdaIN`: adaptive instance normalization AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i
  (Huang & Belongie 2017, arXiv:1703.06868; Karras et al. 2019, arXiv:1812.04948, Eq. 1), with the
  style y = (y_s, y_b) produced from w by a learned affine map "A".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedLinear

__all__ = ["PixelNorm", "AdaIN", "adaptive_instance_norm", "instance_norm"]


class PixelNorm(nn.Module):
    """Normalize each pixel's feature vector (dim 1) to unit mean square."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def instance_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each channel of each sample to zero mean and unit variance over its pixels."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps)


def adaptive_instance_norm(x: Tensor, scale: Tensor, bias: Tensor, eps: float = 1e-8) -> Tensor:
    """Eq. 1: ``scale * instance_norm(x) + bias``; ``scale`` and ``bias`` are (N, C)."""
    return scale[:, :, None, None] * instance_norm(x, eps) + bias[:, :, None, None]


class AdaIN(nn.Module):
    """AdaIN with its affine style map A: ``forward(x (N, C, H, W), w (N, w_dim))``.

    The scale half of A's bias starts at 1 so a fresh layer passes normalized features through.
    """

    def __init__(self, channels: int, w_dim: int = 512) -> None:
        super().__init__()
        self.style_scale = EqualizedLinear(w_dim, channels, gain=1.0, bias_init=1.0)
        self.style_bias = EqualizedLinear(w_dim, channels, gain=1.0, bias_init=0.0)

    def style(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """y = (y_s, y_b) = A(w), each (N, C)."""
        return self.style_scale(w), self.style_bias(w)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        scale, bias = self.style(w)
        return adaptive_instance_norm(x, scale, bias)
