"""ResNet generator of CycleGAN (Zhu et al. 2017, arXiv:1703.10593, Sec. 4 and Appendix 7.2).

The image-transformation network of Johnson et al. 2016 (arXiv:1603.08155): c7s1-64, d128, d256,
R256 x ``n_blocks``, u128, u64, c7s1-3 (``c7s1-k``: 7x7 convolution, stride 1; ``dk``: 3x3
convolution, stride 2; ``Rk``: residual block of two 3x3 convolutions; ``uk``: 3x3 fractionally
strided convolution, stride 1/2), instance normalization and ReLU after every layer but the
last, which is a tanh. Reflection padding reduces border artifacts. 6 blocks for 128 px
training images, 9 for 256 px and more. Inputs need H and W divisible by 4.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from genmodels.nn.unet import init_normal, norm_layer

__all__ = ["ResnetBlock", "ResnetGenerator"]


class ResnetBlock(nn.Module):
    """x + [reflect-pad, 3x3 conv, norm, ReLU, reflect-pad, 3x3 conv, norm](x)."""

    def __init__(self, channels: int, norm: Literal["batch", "instance", "none"] = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        use_bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=use_bias), norm_layer(norm, channels), nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=use_bias), norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(n, in_channels, H, W) in [-1, 1] -> (n, out_channels, H, W) in [-1, 1]; H, W multiples of 4.

    Args:
        in_channels, out_channels: image channels of the two domains.
        ngf: channels of the first layer (64).
        n_blocks: residual blocks (9 for 256 px, 6 for 128 px).
        norm: ``instance`` (the paper), ``batch`` or ``none``.
        dropout: inside the residual blocks (0 in the paper).

    Example:
        >>> net = ResnetGenerator(3, 3, ngf=4, n_blocks=2)
        >>> net(torch.zeros(1, 3, 16, 24)).shape
        torch.Size([1, 3, 16, 24])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: Literal["batch", "instance", "none"] = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        use_bias = norm != "batch"
        layers: list[nn.Module] = [  # c7s1-64
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=use_bias), norm_layer(norm, ngf), nn.ReLU(True),
        ]
        for mult in (1, 2):  # d128, d256
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=use_bias), norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]  # R256 x n_blocks
        for mult in (4, 2):  # u128, u64
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=use_bias),
                norm_layer(norm, ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]  # c7s1-3
        self.net = nn.Sequential(*layers)
        self.apply(init_normal)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResnetGenerator input sizes must be multiples of 4, got {tuple(x.shape[-2:])}")
        return self.net(x)
