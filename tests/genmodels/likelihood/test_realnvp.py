"""RealNVP: exact inverse, log-determinant against autograd, shapes, errors and sampling."""

import math

import pytest
import torch
import yaml

from genmodels import RealNVP
from genmodels.likelihood.realnvp import AffineCoupling, checkerboard_mask
from tests.cli.common import EXPERIMENTS
from tests.genmodels.likelihood.helpers import brute_force_log_det, perturb_


def _model(shape=(1, 8, 8), num_scales=2, **kwargs) -> RealNVP:
    torch.manual_seed(0)
    return perturb_(RealNVP(image_shape=shape, num_scales=num_scales, hidden_channels=8, num_blocks=1, **kwargs), 0.1).eval()


@pytest.mark.parametrize("shape, num_scales", [((1, 8, 8), 2), ((3, 8, 8), 3), ((2, 4, 4), 1)])
def test_inverse_recovers_the_input(shape, num_scales):
    model = _model(shape, num_scales)
    y = torch.rand(4, *shape)
    with torch.no_grad():
        latents, _ = model.encode(y)
        assert sum(z[0].numel() for z in latents) == y[0].numel()  # a bijection keeps the dimension
        assert (model.decode(latents) - y).abs().max() < 1e-4


@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_each_coupling_log_det_matches_autograd(mask, parity):
    torch.manual_seed(0)
    layer = perturb_(AffineCoupling(4, mask, parity, hidden_channels=6, num_blocks=1), 0.3).double()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    _, log_det = layer(x)
    assert log_det.item() == pytest.approx(brute_force_log_det(lambda v: [layer(v)[0]], x).item(), abs=1e-8)
    assert log_det.abs().item() > 0.1  # not trivially the identity
    assert torch.allclose(layer.inverse(layer(x)[0]), x, atol=1e-12)


def test_whole_bijection_log_det_matches_autograd():
    model = _model((1, 4, 4), 2).double()
    y = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    _, log_det = model.encode(y)  # logit pre-processing and every coupling
    assert log_det.item() == pytest.approx(brute_force_log_det(lambda v: model.encode(v)[0], y).item(), abs=1e-8)


def test_checkerboard_coupling_leaves_the_masked_half_unchanged():
    layer = perturb_(AffineCoupling(1, "checkerboard", 0, hidden_channels=4, num_blocks=1), 0.3)
    x = torch.randn(2, 1, 4, 4)
    y, _ = layer(x)
    b = checkerboard_mask(4, 4, 0).bool().expand_as(x)
    assert torch.equal(y[b], x[b]) and not torch.allclose(y[~b], x[~b])


def test_an_image_size_the_squeezes_cannot_divide_is_refused():
    with pytest.raises(ValueError, match=r"RealNVP squeezes 2 time\(s\).*divisible by 4; got 30x30.*num_scales"):
        RealNVP(image_shape=(1, 30, 30), num_scales=3)
    RealNVP(image_shape=(1, 28, 28), num_scales=3, hidden_channels=4, num_blocks=1)  # 28 -> 14 -> 7 is fine


def test_samples_are_images_on_the_pixel_grid_and_reproducible():
    model = _model()
    state = torch.get_rng_state()
    a = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)  # only the given generator was used
    assert a.shape == (3, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    pixels = (a + 1) * 127.5
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)  # quantized back to the 256 levels
    assert torch.equal(a, model.sample(3, generator=torch.Generator().manual_seed(1)))
    # T = 0 is the mode of the prior: every sample is the same image.
    zero = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.0)
    assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, condition=torch.tensor([1, 2]))


def test_bits_per_dim_counts_the_dequantization_scaling():
    # With identity couplings (the initial state, s = t = 0) and alpha = 0 the bijection is the
    # logit; its density on a y with logit(y) = 0 everywhere is N(0,1)(0) * 4 per dimension.
    model = RealNVP(image_shape=(1, 4, 4), num_scales=1, hidden_channels=4, num_blocks=1, alpha=0.0)
    log_density = model.log_density(torch.full((1, 1, 4, 4), 0.5))
    expected = 16 * (-0.5 * torch.log(torch.tensor(2 * torch.pi)) + torch.log(torch.tensor(4.0)))
    assert log_density.item() == pytest.approx(expected.item(), rel=1e-5)
    batch = {"image": torch.zeros(2, 1, 4, 4)}
    bpd = model.bits_per_dim(batch, torch.Generator().manual_seed(0))
    assert bpd.shape == (2,) and (bpd > 0).all()


# -- the authors' L2 and the paper's CIFAR-10 configuration ---------------------------------------


def test_l2_covers_only_weight_norm_magnitudes_and_coupling_scales():
    torch.manual_seed(0)
    model = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1, l2_coefficient=5e-5)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    # Count by hand: every coupling (3 checkerboard + 3 channel-wise + 4 final = 10) has one
    # ScaleTranslationNet with 1 input conv + 2 convs per residual block, all weight-normalized
    # (g: one value per output channel, 4 here), and one tanh scale per changed channel.
    scale_channels = 3 * 1 + 3 * 2 + 4 * 2  # checkerboard on 1 channel, channel-wise on 4/2, final on 2
    magnitudes = 10 * 3 * 4
    expected = 0.25 * (magnitudes + scale_channels)
    assert model.weight_scale_l2().item() == pytest.approx(expected)
    assert model.regularization().item() == pytest.approx(5e-5 * expected / (64 * math.log(2)))
    # Biases and convolution directions are not penalized: changing them leaves the L2 unchanged.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("original1"):
                p.fill_(3.0)
    assert model.weight_scale_l2().item() == pytest.approx(expected)
    assert RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1).weight_decay == 0.0


def test_training_loss_is_bits_per_dim_plus_the_l2():
    torch.manual_seed(0)
    model = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1, l2_coefficient=0.1)
    model.log_train = lambda logs: None
    batch = {"image": torch.rand(2, 1, 8, 8) * 2 - 1}
    torch.manual_seed(1)
    loss = model.training_step(batch, 0)
    torch.manual_seed(1)
    bpd = model.bits_per_dim(batch).mean()
    torch.testing.assert_close(loss, bpd + 0.1 * model.weight_scale_l2() / (64 * math.log(2)))


def test_cifar10_config_is_the_papers_architecture():
    config = yaml.safe_load((EXPERIMENTS / "realnvp/cifar10.yaml").read_text())
    args = config["model"]["init_args"]
    assert (args["num_scales"], args["num_blocks"], args["hidden_channels"]) == (2, 8, 64)  # one downscaling
    model = RealNVP(image_shape=(3, 32, 32), **{**args, "hidden_channels": 4, "num_blocks": 1})
    assert [shape[1] for shape in model.flow.latent_shapes] == [16, 16]  # one squeeze: 32 -> 16
    assert args["l2_coefficient"] == 5e-5 and config["data"]["init_args"]["batch_size"] == 64
    # The authors clip the global norm of the nats-per-image gradient at 100.
    assert config["trainer"]["gradient_clip_val"] == pytest.approx(100 / (3072 * math.log(2)), rel=1e-3)
