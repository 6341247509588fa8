import torch
import torch.nn.functional as F

from genmodels.nn.modulated_conv import ModulatedConv2d, modulated_conv2d


def test_demodulated_convolution_keeps_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 16, 3, w_dim=8)
    x = torch.randn(8, 32, 16, 16)
    w = torch.randn(8, 8) * 3  # styles far from 1 must not change the output scale
    y = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
    per_sample = y.std(dim=(1, 2, 3))
    assert torch.all((per_sample - 1).abs() < 0.1), per_sample


def test_grouped_implementation_equals_per_sample_convolutions():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.rand(3, 4) + 0.5
    out = modulated_conv2d(x, weight, styles, demodulate=True)
    for i in range(3):
        wi = weight * styles[i].view(1, 4, 1, 1)
        wi = wi / wi.pow(2).sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[i : i + 1], F.conv2d(x[i : i + 1], wi, padding=1), rtol=1e-4, atol=1e-5)


def test_upsampling_doubles_the_resolution():
    conv = ModulatedConv2d(4, 2, 3, w_dim=8, up=True, demodulate=False)
    assert conv(torch.randn(2, 4, 4, 4), torch.randn(2, 8)).shape == (2, 2, 8, 8)
