import math

import torch

from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear


def test_linear_stores_unit_normal_weights_and_scales_them_at_run_time():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 128)
    assert abs(layer.weight.std().item() - 1.0) < 0.02 and abs(layer.weight.mean().item()) < 0.02
    x = torch.randn(4, 256)
    expected = x @ (layer.weight * math.sqrt(2 / 256)).T
    torch.testing.assert_close(layer(x), expected)
    # The scale is applied at run time: changing the stored weight changes the output by the same factor.
    with torch.no_grad():
        layer.weight.mul_(2)
    torch.testing.assert_close(layer(x), 2 * expected)


def test_lr_multiplier_keeps_effective_init_and_scales_the_step():
    torch.manual_seed(0)
    layer = EqualizedLinear(512, 512, lr_mul=0.01, bias_init=0.5)
    torch.testing.assert_close(layer.effective_weight(), layer.weight * math.sqrt(2 / 512) * 0.01)
    assert abs(layer.effective_weight().std().item() - math.sqrt(2 / 512)) < 0.01 * math.sqrt(2 / 512) * 5
    torch.testing.assert_close(layer(torch.zeros(1, 512)), torch.full((1, 512), 0.5))
    # A unit change of the stored weight moves the effective weight lr_mul times less than without it.
    plain = EqualizedLinear(512, 512)
    assert math.isclose(layer.weight_scale / plain.weight_scale, 0.01)


def test_conv_scale_uses_fan_in_of_the_kernel():
    torch.manual_seed(0)
    conv = EqualizedConv2d(8, 4, 3, gain=1.0)
    x = torch.randn(2, 8, 5, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight / math.sqrt(8 * 9), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape == (2, 4, 5, 5)
