"""Modulated convolution with weight demodulation (Karras et al. 2020, arXiv:1912.04958, Sec. 2.2).

StyleGAN2 replaces AdaIN by scaling the convolution weights with the style s (Eq. 1,
w'_ijk = s_i w_ijk) and, instead of normalizing the activations, normalizing the weights so the
outputs return to unit standard deviation if the inputs have it (Eq. 3,
w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)). This removes the "droplet" artifacts AdaIN
causes while keeping the scale-specific control of styles.

Every sample has its own weights, so the convolution is run as one grouped convolution over the
batch folded into the channel dimension (N groups), as the paper describes (App. B).
Upsampling (``up=True``) is a bilinear x2 resize before the convolution rather than the official
transposed convolution followed by a [1, 3, 3, 1] blur: the same low-pass-then-convolve effect,
simpler code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedLinear

__all__ = ["ModulatedConv2d", "modulated_conv2d"]


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, eps: float = 1e-8) -> Tensor:
    """x (N, I, H, W), weight (O, I, k, k) already scaled, styles (N, I) -> (N, O, H, W)."""
    n, in_channels, h, w = x.shape
    out_channels, _, k, _ = weight.shape
    weights = weight[None] * styles[:, None, :, None, None]  # Eq. 1: (N, O, I, k, k)
    if demodulate:  # Eq. 3
        weights = weights * torch.rsqrt(weights.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    out = F.conv2d(x.reshape(1, n * in_channels, h, w), weights.reshape(n * out_channels, in_channels, k, k), padding=k // 2, groups=n)
    return out.reshape(n, out_channels, h, w)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution: ``forward(x, w)`` with the affine map A: w -> s (bias init 1).

    Args:
        in_channels, out_channels, kernel_size: the convolution.
        w_dim: size of w.
        demodulate: Eq. 3 (off for the toRGB layers).
        up: bilinear x2 upsampling before the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, w_dim: int = 512, demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # equalized lr
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return modulated_conv2d(x, self.weight * self.weight_scale, self.affine(w), self.demodulate)
