"""UNetGenerator: skips, depth from the image size, dropout kept at test time, batch-statistics norm."""

import pytest
import torch

from genmodels.nn.unet import AlwaysDropout, UNetGenerator, unet_depth


def test_depth_takes_the_image_down_to_one_pixel():
    assert unet_depth(256) == 8 and unet_depth(32) == 5 and unet_depth(4) == 2
    with pytest.raises(ValueError, match="power-of-two"):
        unet_depth(48)


def test_shapes_and_range_at_any_multiple_of_the_stride():
    net = UNetGenerator(1, 3, num_downs=4, ngf=4).eval()
    for size in [(16, 16), (32, 16), (48, 64)]:
        out = net(torch.randn(2, 1, *size))
        assert out.shape == (2, 3, *size) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.randn(1, 1, 24, 16))


def test_skip_connections_carry_detail_past_the_bottleneck():
    net = UNetGenerator(3, 3, num_downs=3, ngf=4, dropout=0.0, norm="none").eval()
    with torch.no_grad():  # cut the bottleneck: nothing about the input gets through it
        for p in net.down[-1].parameters():
            p.zero_()
    x1, x2 = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    assert not torch.allclose(net(x1), net(x2))  # the skips still carry the input
    assert net.up[-1][1].in_channels == 2 * 4  # the first encoder map is concatenated into the last layer


def test_dropout_stays_on_in_eval_mode_unless_disabled():
    x = torch.randn(2, 3, 16, 16)
    noisy = UNetGenerator(3, 3, num_downs=4, ngf=4, dropout=0.5, dropout_at_test=True, dropout_layers="paper").eval()
    assert not torch.equal(noisy(x), noisy(x))
    quiet = UNetGenerator(3, 3, num_downs=4, ngf=4, dropout=0.5, dropout_at_test=False, dropout_layers="paper").eval()
    assert torch.equal(quiet(x), quiet(x))


def test_batchnorm_uses_the_current_batch_in_eval_mode_too():
    net = UNetGenerator(3, 3, num_downs=3, ngf=4, dropout=0.0)
    x = torch.randn(2, 3, 8, 8)
    train_out = net.train()(x)
    assert torch.allclose(net.eval()(x), train_out)  # no running statistics: the paper's test-time rule
    assert not any(b.numel() for name, b in net.named_buffers())


def test_dropout_layers_are_the_cited_codes_or_the_papers():
    """junyanz models/networks.py UnetGenerator(num_downs): innermost block without dropout, then
    num_downs - 5 blocks of ngf*8 with `use_dropout` (Dropout(0.5) after the up-norm), then the
    ngf*4, ngf*2, ngf and outermost blocks without. Decoder steps counted from the innermost."""
    def dropping(net):
        return [j for j, up in enumerate(net.up) if any(isinstance(m, AlwaysDropout) for m in up)]

    expected = {num_downs: [j for j in range(num_downs) if 0 < j <= num_downs - 5] for num_downs in (5, 6, 8)}
    for num_downs, steps in expected.items():
        assert dropping(UNetGenerator(3, 3, num_downs=num_downs, ngf=2)) == steps
    assert expected[8] == [1, 2, 3]  # U-Net-256: the 512-channel decoder layers after the innermost
    assert dropping(UNetGenerator(3, 3, num_downs=8, ngf=2, dropout_layers="paper")) == [0, 1, 2]  # CD512-CD1024-CD1024
    assert dropping(UNetGenerator(3, 3, num_downs=8, ngf=2, dropout=0.0)) == []
