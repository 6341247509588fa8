"""ResnetGenerator: Johnson et al.'s layout (c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3)."""

import pytest
import torch
from torch import nn

from genmodels.nn.resnet_generator import ResnetBlock, ResnetGenerator


def test_layout_and_shapes():
    net = ResnetGenerator(3, 3, ngf=4, n_blocks=6)
    convs = [m for m in net.net if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.kernel_size[0] for c in convs] == [7, 3, 3, 3, 3, 7]
    assert [c.out_channels for c in convs] == [4, 8, 16, 8, 4, 3]
    assert sum(isinstance(m, ResnetBlock) for m in net.net) == 6
    out = net(torch.randn(2, 3, 20, 28))
    assert out.shape == (2, 3, 20, 28) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 3, 18, 20))


def test_residual_block_is_identity_plus_a_residual():
    block = ResnetBlock(4)
    for p in block.body[-2].parameters():  # zero the last convolution: the residual vanishes
        nn.init.zeros_(p)
    x = torch.randn(1, 4, 8, 8)
    assert torch.allclose(block(x), x)
