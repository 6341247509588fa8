import torch

from genmodels.nn.noise import NoiseInjection


def test_noise_is_scaled_per_channel_and_shared_across_channels():
    layer = NoiseInjection(3)
    x = torch.zeros(2, 3, 4, 4)
    assert torch.equal(layer(x), x)  # learned scale starts at zero
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.0]))
    noise = torch.randn(2, 1, 4, 4)
    y = layer(x, noise)
    torch.testing.assert_close(y[:, 0], noise[:, 0])
    torch.testing.assert_close(y[:, 1], 2 * noise[:, 0])
    assert torch.equal(y[:, 2], torch.zeros(2, 4, 4))
    assert layer.weight.requires_grad
