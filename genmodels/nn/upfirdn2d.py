"""FIR resampling: upsample, FIR filter, downsample ("upfirdn"), as StyleGAN2 resamples images.

StyleGAN2 (Karras et al. 2020, arXiv:1912.04958) replaces nearest/bilinear resizing by a separable
low-pass FIR filter, the binomial [1, 3, 3, 1] by default, applied in the order the name says
(the official CUDA op ``upfirdn2d`` has these semantics):

1. upsample by ``up``: insert ``up - 1`` zeros after every pixel along each axis;
2. pad with zeros (a negative amount crops) by ``(left, right, top, bottom)``;
3. convolve with the filter, scaled by ``gain`` (the filter itself sums to 1);
4. downsample by ``down``: keep every ``down``-th pixel.

Zero insertion divides the mean by ``up**2``, so upsampling uses ``gain = up**2`` to keep it.
With [1, 3, 3, 1] a 2x upsampling equals half-pixel bilinear interpolation inside the image and
differs at the border, where the official op sees zeros instead of repeating the edge pixel.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fir_filter", "upfirdn2d", "upsample2d", "downsample2d", "filter2d", "DEFAULT_TAPS"]

#: The binomial filter of StyleGAN2 (``resample_filter=[1, 3, 3, 1]`` in the official networks).
DEFAULT_TAPS: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)


def fir_filter(taps: Sequence[float] = DEFAULT_TAPS) -> Tensor:
    """The separable 2-D filter ``outer(taps, taps)``, normalized to sum 1."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.dim() != 1 or f.numel() == 0:
        raise ValueError(f"FIR taps must be a non-empty 1-D sequence, got {list(taps)!r}")
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def upfirdn2d(x: Tensor, f: Tensor, up: int = 1, down: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1.0) -> Tensor:
    """x (N, C, H, W), f (fh, fw) -> upsample by zero insertion, pad, filter with gain, downsample.

    ``padding`` is ``(left, right, top, bottom)`` applied after upsampling. The filter is applied
    as a true convolution (flipped), which matters only for asymmetric filters.
    """
    n, c, h, w = x.shape
    if up > 1:  # 1. zeros after every pixel
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    left, right, top, bottom = padding
    x = F.pad(x, (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)))  # 2. zeros ...
    x = x[:, :, max(-top, 0) : x.shape[2] - max(-bottom, 0), max(-left, 0) : x.shape[3] - max(-right, 0)]  # ... or crop
    weight = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)  # 3. depthwise
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x  # 4.


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """(N, C, H, W) -> (N, C, up H, up W), mean preserved (gain up**2), centred like the official op."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """(N, C, H, W) -> (N, C, H / down, W / down): low-pass then keep every ``down``-th pixel."""
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def filter2d(x: Tensor, f: Tensor, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1.0) -> Tensor:
    """Filter only (no resampling); ``padding`` as in `upfirdn2d`."""
    return upfirdn2d(x, f, padding=padding, gain=gain)
