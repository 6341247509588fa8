"""U-Net generator with skip connections (Ronneberger et al. 2015, arXiv:1505.04597), as pix2pix uses it.

Isola et al. 2017 (arXiv:1611.07004), Sec. 3.2.1 and Appendix 6.1.1: an encoder-decoder whose
layer i is concatenated to layer n - i, so low-level structure shared by input and output (edges,
layout) skips the bottleneck. Encoder C64-C128-C256-C512-C512-C512-C512-C512 (4x4 convolutions,
stride 2, LeakyReLU 0.2, no normalization on the first layer nor on the 1x1 bottleneck), decoder
CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 (the channel counts of the paper include the
concatenated skips; ``CD`` = with dropout 0.5), ReLU, then a 4x4 transposed convolution to the
output channels and tanh. ``num_downs`` 8 is the paper's U-Net-256 (256 px down to 1x1); smaller
images use fewer levels (`unet_depth`), the channel rule ``ngf * min(2^i, 8)`` unchanged.

Dropout is pix2pix's only source of noise and stays on at test time (``dropout_at_test``), and
BatchNorm always normalizes with the statistics of the current batch (``track_running_stats``
off): "we apply batch normalization using the statistics of the test batch" (Sec. 3.3). At the
paper's batch size of 1 that is instance normalization.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNetGenerator", "unet_depth", "norm_layer", "AlwaysDropout"]


def unet_depth(image_size: int) -> int:
    """Levels that take ``image_size`` down to 1x1: 8 for 256 px (U-Net-256), 5 for 32 px."""
    depth = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < 4 or 2**depth != image_size:
        raise ValueError(f"the U-Net needs a power-of-two image size >= 4 (e.g. 32, 64, 256), got {image_size}")
    return depth


def norm_layer(kind: Literal["batch", "instance", "none"], channels: int) -> nn.Module:
    """``batch``: BatchNorm on the current batch's statistics (pix2pix); ``instance``: InstanceNorm (CycleGAN)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, track_running_stats=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


class AlwaysDropout(nn.Module):
    """Dropout that is also active in eval mode when ``at_test`` (pix2pix's noise, Sec. 3.3)."""

    def __init__(self, p: float, at_test: bool = True) -> None:
        super().__init__()
        self.p, self.at_test = p, at_test

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_test)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_test={self.at_test}"


def _drops(step: int, num_downs: int, placement: str) -> bool:
    """Whether decoder step ``step`` (0 = the innermost) ends with dropout."""
    if placement == "paper":
        return step < 3
    # junyanz: the innermost block has none; the num_downs - 5 blocks wrapped around it have it
    return 1 <= step <= num_downs - 5


class UNetGenerator(nn.Module):
    """U-Net: (n, in_channels, H, W) in [-1, 1] -> (n, out_channels, H, W) in [-1, 1].

    H and W must be multiples of ``2 ** num_downs`` (a 256-trained U-Net-256 translates 256x256,
    512x256, 512x512, ... images: it is fully convolutional).

    Args:
        in_channels, out_channels: image channels of the source and target domains.
        num_downs: encoder levels (8 = U-Net-256).
        ngf: channels of the first encoder layer (64 in the paper).
        norm: ``batch`` (the paper) or ``instance``, ``none``.
        dropout: rate of the decoder's dropout layers (0.5 in the paper; 0 disables).
        dropout_at_test: keep dropout on in eval mode, the paper's noise z.
        dropout_layers: which decoder layers drop: ``junyanz`` (the cited PyTorch code,
            junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py ``UnetGenerator``: the
            ``num_downs - 5`` blocks around the innermost one, i.e. decoder layers 2-4 of U-Net-256,
            none below 6 levels) or ``paper`` (Appendix 6.1.1, CD512-CD1024-CD1024: layers 1-3).

    Example:
        >>> net = UNetGenerator(3, 3, num_downs=5, ngf=4)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: Literal["batch", "instance", "none"] = "batch",
        dropout: float = 0.5,
        dropout_at_test: bool = True,
        dropout_layers: Literal["junyanz", "paper"] = "junyanz",
    ) -> None:
        super().__init__()
        if dropout_layers not in ("junyanz", "paper"):
            raise ValueError(f"dropout_layers must be junyanz or paper, got {dropout_layers!r}")
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        self.num_downs = num_downs
        width = [ngf * min(2**i, 8) for i in range(num_downs)]  # C64-C128-C256-C512-C512...
        use_bias = norm != "batch"  # a bias before BatchNorm is cancelled by the mean subtraction
        self.down = nn.ModuleList()
        for i in range(num_downs):
            innermost, outermost = i == num_downs - 1, i == 0
            layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(in_channels if outermost else width[i - 1], width[i], 4, 2, 1, bias=use_bias or innermost))
            if not (outermost or innermost):  # no norm on the first layer nor on the 1x1 bottleneck
                layers.append(norm_layer(norm, width[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for j, i in enumerate(reversed(range(num_downs))):
            # Decoder step j undoes encoder level i; its input is level i's output concatenated
            # with the skip (except the innermost step, which reads the bottleneck alone).
            in_width = width[i] if i == num_downs - 1 else 2 * width[i]
            if i == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(in_width, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(in_width, width[i - 1], 4, 2, 1, bias=use_bias), norm_layer(norm, width[i - 1])]
                if dropout > 0 and _drops(j, num_downs, dropout_layers):
                    layers.append(AlwaysDropout(dropout, dropout_at_test))
            self.up.append(nn.Sequential(*layers))
        self.apply(init_normal)

    def forward(self, x: Tensor) -> Tensor:
        factor = 2**self.num_downs
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"U-Net input sizes must be multiples of {factor}, got {tuple(x.shape[-2:])}")
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck is the innermost decoder's input, not a skip
        for up in self.up:
            x = up(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return x


def init_normal(module: nn.Module) -> None:
    """Weights from N(0, 0.02) (pix2pix Sec. 6.2 and CycleGAN Sec. 7.2), norm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
