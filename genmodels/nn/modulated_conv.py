"""Modulated convolution with weight demodulation (Karras et al. 2020, arXiv:1912.04958, Sec. 2.2).

StyleGAN2 replaces AdaIN by scaling the convolution weights with the style s (Eq. 1,
w'_ijk = s_i w_ijk) and, instead of normalizing the activations, normalizing the weights so the
outputs return to unit standard deviation if the inputs have it (Eq. 3,
w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)). This removes the "droplet" artifacts AdaIN
causes while keeping the scale-specific control of styles.

Every sample has its own weights, so the convolution is run as one grouped convolution over the
batch folded into the channel dimension (N groups), as the paper describes (App. B).
Upsampling (``up=True``) follows the official code (``resample="fir"``): a stride-2 transposed
convolution, then the [1, 3, 3, 1] FIR low-pass with gain 4 (`genmodels.nn.upfirdn2d`), padded so
the output is exactly twice the input size. ``resample="bilinear"`` (a bilinear x2 resize before
an ordinary convolution) is kept as an option.
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.equalized import EqualizedLinear
from genmodels.nn.upfirdn2d import DEFAULT_TAPS, fir_filter, upfirdn2d

__all__ = ["ModulatedConv2d", "modulated_conv2d"]


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, eps: float = 1e-8, up_filter: Optional[Tensor] = None
) -> Tensor:
    """x (N, I, H, W), weight (O, I, k, k) already scaled, styles (N, I) -> (N, O, H, W).

    With ``up_filter`` (N, I, H, W) -> (N, O, 2H, 2W): stride-2 transposed convolution, then the
    FIR filter with gain 4, padded as the official ``conv2d_resample`` pads it.
    """
    n, in_channels, h, w = x.shape
    out_channels, _, k, _ = weight.shape
    weights = weight[None] * styles[:, None, :, None, None]  # Eq. 1: (N, O, I, k, k)
    if demodulate:  # Eq. 3
        weights = weights * torch.rsqrt(weights.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    x = x.reshape(1, n * in_channels, h, w)
    if up_filter is None:
        out = F.conv2d(x, weights.reshape(n * out_channels, in_channels, k, k), padding=k // 2, groups=n)
        return out.reshape(n, out_channels, h, w)
    # Transposed conv weights are (in, out / groups, k, k).
    out = F.conv_transpose2d(x, weights.transpose(1, 2).reshape(n * in_channels, out_channels, k, k), stride=2, groups=n)
    fw = up_filter.shape[-1]
    p0, p1 = k // 2 + (fw + 1) // 2 - (k - 1), k // 2 + (fw - 2) // 2 - (k - 2)
    out = upfirdn2d(out, up_filter, padding=(p0, p1, p0, p1), gain=4.0)
    return out.reshape(n, out_channels, 2 * h, 2 * w)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution: ``forward(x, w)`` with the affine map A: w -> s (bias init 1).

    Args:
        in_channels, out_channels, kernel_size: the convolution.
        w_dim: size of w.
        demodulate: Eq. 3 (off for the toRGB layers).
        up: x2 upsampling.
        resample: ``fir`` (official: transposed conv + FIR filter ``taps``) or ``bilinear``.
        taps: the 1-D FIR taps ([1, 3, 3, 1]).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, w_dim: int = 512, demodulate: bool = True, up: bool = False,
        resample: Literal["fir", "bilinear"] = "fir", taps: Sequence[float] = DEFAULT_TAPS,
    ) -> None:
        super().__init__()
        if resample not in ("fir", "bilinear"):
            raise ValueError(f"resample must be 'fir' or 'bilinear', got {resample!r}")
        self.resample = resample
        self.register_buffer("resample_filter", fir_filter(taps), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # equalized lr
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        weight, styles = self.weight * self.weight_scale, self.affine(w)
        if self.up and self.resample == "fir":
            return modulated_conv2d(x, weight, styles, self.demodulate, up_filter=self.resample_filter)
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return modulated_conv2d(x, weight, styles, self.demodulate)
