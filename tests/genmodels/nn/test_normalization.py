import torch

from genmodels.nn.normalization import AdaIN, PixelNorm


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 16, 4, 4) * 5 + 1
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 4, 4), rtol=1e-5, atol=1e-5)


def test_adain_output_statistics_equal_the_style():
    torch.manual_seed(0)
    adain = AdaIN(channels=6, w_dim=10)
    x = torch.randn(2, 6, 8, 8) * 3 + 2
    w = torch.randn(2, 10)
    scale, bias = adain.style(w)
    y = adain(x, w)
    torch.testing.assert_close(y.mean(dim=(2, 3)), bias, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-4, rtol=1e-4)


def test_fresh_adain_style_scale_is_one():
    adain = AdaIN(channels=4, w_dim=8)
    scale, bias = adain.style(torch.zeros(1, 8))
    torch.testing.assert_close(scale, torch.ones(1, 4))
    torch.testing.assert_close(bias, torch.zeros(1, 4))
