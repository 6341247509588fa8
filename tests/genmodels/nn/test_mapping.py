import torch

from genmodels.nn.mapping import MappingNetwork


def test_paper_defaults_and_shapes():
    net = MappingNetwork()
    assert len(net.layers) == 8 and net.layers[0].lr_mul == 0.01 and net.w_dim == 512
    small = MappingNetwork(z_dim=8, w_dim=6, num_layers=2)
    assert small(torch.randn(5, 8)).shape == (5, 6)


def test_z_is_normalized_first_so_its_scale_does_not_matter():
    torch.manual_seed(0)
    net = MappingNetwork(z_dim=8, w_dim=8, num_layers=2)
    z = torch.randn(3, 8)
    torch.testing.assert_close(net(z), net(10 * z), rtol=1e-4, atol=1e-5)
