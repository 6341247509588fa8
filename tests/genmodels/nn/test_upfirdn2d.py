"""FIR resampling against direct computations on fixed small tensors (official upfirdn2d semantics)."""

import math

import pytest
import torch

from genmodels.nn.equalized import EqualizedConv2d
from genmodels.nn.modulated_conv import ModulatedConv2d
from genmodels.nn.upfirdn2d import fir_filter, upfirdn2d, upsample2d, downsample2d

X = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4) ** 1.5  # fixed, non-symmetric values


def _up_1d(row: list[float]) -> list[float]:
    """2x upsampling with [1, 3, 3, 1] in closed form: (x[i-1] + 3 x[i]) / 4, (3 x[i] + x[i+1]) / 4, zeros outside."""
    at = lambda i: row[i] if 0 <= i < len(row) else 0.0  # noqa: E731
    out = []
    for i in range(len(row)):
        out += [(at(i - 1) + 3 * at(i)) / 4, (3 * at(i) + at(i + 1)) / 4]
    return out


def _down_1d(row: list[float]) -> list[float]:
    """2x downsampling with [1, 3, 3, 1] / 8: (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8, zeros outside."""
    at = lambda i: row[i] if 0 <= i < len(row) else 0.0  # noqa: E731
    return [(at(2 * i - 1) + 3 * at(2 * i) + 3 * at(2 * i + 1) + at(2 * i + 2)) / 8 for i in range(len(row) // 2)]


def _separable(image: torch.Tensor, op) -> torch.Tensor:
    rows = [op(r) for r in image.tolist()]
    cols = [op(list(c)) for c in zip(*rows)]
    return torch.tensor([list(r) for r in zip(*cols)])


def test_filter_is_the_normalized_outer_product():
    f = fir_filter([1, 3, 3, 1])
    torch.testing.assert_close(f, torch.tensor([1.0, 3, 3, 1])[:, None] * torch.tensor([1.0, 3, 3, 1])[None] / 64)


def test_upsample2d_equals_the_closed_form():
    expected = _separable(X[0, 0], _up_1d)
    torch.testing.assert_close(upsample2d(X, fir_filter())[0, 0], expected)
    # Inside the image this is half-pixel bilinear interpolation; the border sees zeros.
    bilinear = torch.nn.functional.interpolate(X, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample2d(X, fir_filter())[0, 0, 1:-1, 1:-1], bilinear[0, 0, 1:-1, 1:-1])
    assert not torch.allclose(upsample2d(X, fir_filter())[0, 0, 0], bilinear[0, 0, 0])


def test_downsample2d_equals_the_closed_form():
    torch.testing.assert_close(downsample2d(X, fir_filter())[0, 0], _separable(X[0, 0], _down_1d))


def test_upfirdn2d_order_pad_and_true_convolution():
    """Zero insertion, then padding, then a *flipped* (asymmetric) filter with gain, then decimation."""
    x = torch.tensor([[[[1.0, 2.0, 4.0]]]])
    f = torch.tensor([[1.0, 2.0]])  # 1 x 2, asymmetric
    y = upfirdn2d(x, f, up=2, padding=(1, 0, 0, 0), gain=3.0)
    u = [0.0, 1.0, 0.0, 2.0, 0.0, 4.0, 0.0]  # pad 1 left, then the zero-inserted row
    conv = [3.0 * (1.0 * u[i + 1] + 2.0 * u[i]) for i in range(len(u) - 1)]  # y[n] = sum_k f[k] u[n - k]
    torch.testing.assert_close(y[0, 0, 0], torch.tensor(conv))
    torch.testing.assert_close(upfirdn2d(x, f, up=2, padding=(1, 0, 0, 0), gain=3.0, down=2)[0, 0, 0], torch.tensor(conv[::2]))


def test_negative_padding_crops():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(upfirdn2d(x, torch.ones(1, 1), padding=(-1, 0, -2, -1)), x[:, :, 2:3, 1:])


def test_modulated_up_conv_with_an_identity_kernel_is_fir_upsampling():
    """Transposed conv + FIR (gain 4) with a centre-tap kernel and unit styles == upsample2d == closed form."""
    conv = ModulatedConv2d(1, 1, 3, w_dim=2, demodulate=False, up=True)
    with torch.no_grad():
        conv.affine.weight.zero_()  # styles = the bias, initialized to 1
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0 / conv.weight_scale
    y = conv(X, torch.randn(1, 2))
    torch.testing.assert_close(y[0, 0], _separable(X[0, 0], _up_1d))


@pytest.mark.parametrize("kernel", [1, 3])
def test_downsampling_conv_with_an_identity_kernel_is_fir_downsampling(kernel):
    conv = EqualizedConv2d(1, 1, kernel, bias=False, down=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, kernel // 2, kernel // 2] = 1.0 / conv.weight_scale
    torch.testing.assert_close(conv(X)[0, 0], _separable(X[0, 0], _down_1d))


def test_upsampling_preserves_a_constant_inside_and_gains_up_squared():
    y = upsample2d(torch.full((1, 2, 6, 6), 2.0), fir_filter())
    torch.testing.assert_close(y[:, :, 1:-1, 1:-1], torch.full((1, 2, 10, 10), 2.0))
    assert math.isclose(float(fir_filter().sum()), 1.0)
