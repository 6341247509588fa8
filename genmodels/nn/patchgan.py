"""PatchGAN discriminator (Isola et al. 2017, arXiv:1611.07004, Sec. 3.2.2 and Appendix 6.1.2).

A fully convolutional classifier whose every output scores one N x N patch of its input as real
or fake, so D models high-frequency structure while L1 handles the low frequencies. With
``n_layers`` 3 (the default) the patch is 70x70: C64-C128-C256-C512 (4x4 convolutions, stride 2
but 1 for the last, LeakyReLU 0.2, no normalization on the first layer), then a 4x4 convolution
to one channel. CycleGAN uses the same network with instance normalization (Zhu et al. 2017,
Sec. 4). Outputs are raw scores (logits), one per patch, so every loss of `genmodels.gans.losses`
applies and averages over patches.
"""

from __future__ import annotations

from typing import Literal

import torch  # noqa: F401 (used by the docstring example)
from torch import Tensor, nn

from genmodels.nn.unet import init_normal, norm_layer

__all__ = ["PatchGANDiscriminator", "receptive_field"]


def receptive_field(n_layers: int) -> int:
    """Side of the input patch each output sees: 70 for 3 layers, 34 for 2, 16 for 1."""
    # Backwards from one output pixel: two stride-1 4x4 convolutions, then n_layers stride-2 ones.
    size = 1
    for stride in [1, 1] + [2] * n_layers:
        size = (size - 1) * stride + 4
    return size


class PatchGANDiscriminator(nn.Module):
    """(n, in_channels, H, W) -> (n, 1, H', W') patch scores.

    Args:
        in_channels: input channels (pix2pix's conditional D sees source and target: 3 + 3).
        ndf: channels of the first layer (64).
        n_layers: stride-2 layers; 3 gives the 70x70 PatchGAN. Inputs need H, W >= 2^n_layers * 4.
        norm: ``batch`` (pix2pix), ``instance`` (CycleGAN) or ``none``.

    Example:
        >>> d = PatchGANDiscriminator(6, ndf=4)
        >>> d(torch.zeros(1, 6, 256, 256)).shape  # one score per 70x70 patch, stride 8
        torch.Size([1, 1, 30, 30])
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Literal["batch", "instance", "none"] = "batch",
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        use_bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1  # C64 (s2) - C128 (s2) - C256 (s2) - C512 (s1) for n_layers 3
            out = ndf * min(2**i, 8)
            layers += [nn.Conv2d(width, out, 4, stride, 1, bias=use_bias), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_normal)

    @property
    def patch_size(self) -> int:
        """Side of the input patch one output scores (70 for the default)."""
        return receptive_field(self.n_layers)

    def forward(self, x: Tensor) -> Tensor:
        minimum = 2**self.n_layers * 4
        if min(x.shape[-2:]) < minimum:
            raise ValueError(f"PatchGAN with n_layers={self.n_layers} needs inputs of at least {minimum} px, got {tuple(x.shape[-2:])}")
        return self.net(x)
