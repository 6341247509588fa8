"""PatchGANDiscriminator: 70x70 receptive field by default, one score per patch, size checks."""

import pytest
import torch

from genmodels.nn.patchgan import PatchGANDiscriminator, receptive_field


def test_receptive_field_is_70_for_three_layers():
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_each_output_sees_exactly_its_patch(n_layers):
    d = PatchGANDiscriminator(3, ndf=4, n_layers=n_layers, norm="none")
    x = torch.zeros(1, 3, 96, 96, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == receptive_field(n_layers) == d.patch_size


def test_output_is_a_map_of_patch_logits():
    assert PatchGANDiscriminator(6, ndf=4)(torch.randn(2, 6, 256, 256)).shape == (2, 1, 30, 30)
    assert PatchGANDiscriminator(6, ndf=4)(torch.randn(1, 6, 32, 32)).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="at least 32 px"):
        PatchGANDiscriminator(6, ndf=4)(torch.randn(1, 6, 16, 16))
