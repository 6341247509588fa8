"""Equalized learning rate (Karras et al. 2018, arXiv:1710.10196, Sec. 4.1).

Weights are stored as draws of N(0, 1) and multiplied at *run time* by He's constant
``gain / sqrt(fan_in)``. Adam's update is invariant to the scale of a parameter, so storing
unit-scale weights gives every layer the same effective learning speed, whatever its fan-in.

``lr_mul`` (StyleGAN's mapping network uses 0.01; Karras et al. 2019, arXiv:1812.04948, App. C)
slows a layer down further: the stored weight is drawn from N(0, 1 / lr_mul^2) and scaled by
``lr_mul`` at run time, so the *effective* weight starts He-initialized while each Adam step moves
it ``lr_mul`` times less. The same holds for the bias (effective bias = stored bias * lr_mul).

Where the gain sits matters for training, not for the function: ProGAN and StyleGAN put it in the
weight scale and add the bias after (``act(gain W x + b)``), StyleGAN2 applies it after the bias
and the activation (official ``bias_act``: ``act(W x + b) * gain``). For a leaky ReLU both are the
same function with the bias scaled by ``gain``, but Adam moves a stored bias by about ``lr`` per
step whatever its scale, so the effective bias learns ``gain`` times faster in StyleGAN2.
``scale_bias=True`` gives StyleGAN2's dynamics (effective bias = stored bias * lr_mul * gain).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.nn.upfirdn2d import DEFAULT_TAPS, fir_filter, upfirdn2d

__all__ = ["EqualizedLinear", "EqualizedConv2d", "RELU_GAIN"]

#: He's gain for (leaky) ReLU layers; linear output layers use 1.
RELU_GAIN = math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    """``y = x W_eff^T + b_eff`` with ``W_eff = W * gain / sqrt(in_features) * lr_mul``.

    Args:
        in_features, out_features: sizes.
        bias: learn a bias (zero-initialized, or ``bias_init``).
        gain: He gain (sqrt(2) before a leaky ReLU, 1 for linear outputs).
        lr_mul: learning-rate multiplier of this layer (see the module docstring).
        bias_init: initial value of the effective bias (AdaIN's scale uses 1).
        scale_bias: multiply the bias by ``gain`` too (StyleGAN2's order; see the module docstring).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, gain: float = RELU_GAIN, lr_mul: float = 1.0, bias_init: float = 0.0,
        scale_bias: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias: Optional[nn.Parameter] = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_scale = gain / math.sqrt(in_features) * lr_mul
        self.lr_mul = lr_mul
        self.bias_scale = lr_mul * (gain if scale_bias else 1.0)

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_scale

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_scale
        return F.linear(x, self.effective_weight(), bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, scale={self.weight_scale:.4g}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """A "same"-padded convolution with run-time He scaling ``gain / sqrt(in_channels * k * k)``.

    ``down=2`` halves the resolution as StyleGAN2's discriminator does (official ``conv2d_resample``):
    the FIR low-pass ``taps`` first (padded by k // 2 + 1 per side for [1, 3, 3, 1]), then the
    convolution with stride 2 and no padding. ``scale_bias``: as in `EqualizedLinear`.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, gain: float = RELU_GAIN, lr_mul: float = 1.0,
        down: int = 1, taps: Sequence[float] = DEFAULT_TAPS, scale_bias: bool = False,
    ) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"EqualizedConv2d down must be 1 or 2, got {down}")
        self.down = down
        if down > 1:
            self.register_buffer("resample_filter", fir_filter(taps), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias: Optional[nn.Parameter] = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size) * lr_mul
        self.lr_mul, self.padding = lr_mul, kernel_size // 2
        self.bias_scale = lr_mul * (gain if scale_bias else 1.0)

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_scale

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_scale
        if self.down == 1:
            return F.conv2d(x, self.effective_weight(), bias, padding=self.padding)
        fw = self.resample_filter.shape[-1]
        p0, p1 = self.padding + (fw - self.down + 1) // 2, self.padding + (fw - self.down) // 2
        x = upfirdn2d(x, self.resample_filter, padding=(p0, p1, p0, p1))
        return F.conv2d(x, self.effective_weight(), bias, stride=self.down)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, scale={self.weight_scale:.4g}" + (f", down={self.down}" if self.down > 1 else "")
