"""RealNVP: exact inverse, log-determinant against autograd, shapes, errors and sampling; the authors'
coupling networks against an independent transcription of their TF functions."""

import math

import pytest
import torch
import yaml

from genmodels import RealNVP
import torch.nn.functional as F

from genmodels.checkpoints import build_model
from genmodels.likelihood.realnvp import AffineCoupling, AuthorsAffineCoupling, NormalizedConv2d, checkerboard_mask
from tests.cli.common import EXPERIMENTS
from tests.genmodels.likelihood.helpers import brute_force_log_det, perturb_


def _model(shape=(1, 8, 8), num_scales=2, **kwargs) -> RealNVP:
    torch.manual_seed(0)
    return perturb_(RealNVP(image_shape=shape, num_scales=num_scales, hidden_channels=8, num_blocks=1, **kwargs), 0.1).eval()


@pytest.mark.parametrize("network", ["authors", "plain"])
@pytest.mark.parametrize("shape, num_scales", [((1, 8, 8), 2), ((3, 8, 8), 3), ((2, 4, 4), 1)])
def test_inverse_recovers_the_input(shape, num_scales, network):
    model = _model(shape, num_scales, coupling_network=network)
    y = torch.rand(4, *shape)
    with torch.no_grad():
        latents, _ = model.encode(y)
        assert sum(z[0].numel() for z in latents) == y[0].numel()  # a bijection keeps the dimension
        assert (model.decode(latents) - y).abs().max() < 1e-4


@pytest.mark.parametrize("layer_class", [AffineCoupling, AuthorsAffineCoupling])
@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_each_coupling_log_det_matches_autograd(mask, parity, layer_class):
    torch.manual_seed(0)
    layer = perturb_(layer_class(4, mask, parity, hidden_channels=6, num_blocks=1), 0.3).double().eval()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    _, log_det = layer(x)
    assert log_det.item() == pytest.approx(brute_force_log_det(lambda v: [layer(v)[0]], x).item(), abs=1e-8)
    assert log_det.abs().item() > 0.1  # not trivially the identity
    assert torch.allclose(layer.inverse(layer(x)[0]), x, atol=1e-12)


@pytest.mark.parametrize("network", ["authors", "plain"])
def test_whole_bijection_log_det_matches_autograd(network):
    model = _model((1, 4, 4), 2, coupling_network=network).double()
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
    # (The plain network starts as the identity; the authors' starts with s = 0 but a shift.)
    model = RealNVP(image_shape=(1, 4, 4), num_scales=1, hidden_channels=4, num_blocks=1, alpha=0.0,
                    coupling_network="plain")
    log_density = model.log_density(torch.full((1, 1, 4, 4), 0.5))
    expected = 16 * (-0.5 * torch.log(torch.tensor(2 * torch.pi)) + torch.log(torch.tensor(4.0)))
    assert log_density.item() == pytest.approx(expected.item(), rel=1e-5)
    batch = {"image": torch.zeros(2, 1, 4, 4)}
    bpd = model.bits_per_dim(batch, torch.Generator().manual_seed(0))
    assert bpd.shape == (2,) and (bpd > 0).all()


# -- the authors' L2 and the paper's CIFAR-10 configuration ---------------------------------------


def test_l2_covers_only_weight_norm_magnitudes_and_coupling_scales():
    torch.manual_seed(0)
    model = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1, l2_coefficient=5e-5,
                    coupling_network="plain")
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
    assert args["coupling_network"] == "authors"
    model = RealNVP(image_shape=(3, 32, 32), **{**args, "hidden_channels": 4, "num_blocks": 1})
    assert [shape[1] for shape in model.flow.latent_shapes] == [16, 16]  # one squeeze: 32 -> 16
    assert args["l2_coefficient"] == 5e-5 and config["data"]["init_args"]["batch_size"] == 64
    # The authors clip the global norm of the nats-per-image gradient at 100.
    assert config["trainer"]["gradient_clip_val"] == pytest.approx(100 / (3072 * math.log(2)), rel=1e-3)


# -- the authors' coupling networks (tensorflow/models research/real_nvp) ----------------------
# An independent transcription of their functions in their layout (NHWC tensors, (k, k, in, out)
# filters normalized over the first three axes), reading the module's parameters by name.


def _tf_conv(x, conv):
    w = conv.weight.permute(2, 3, 1, 0)  # (k, k, in, out)
    w = w / torch.sqrt((w * w).sum(dim=(0, 1, 2)))
    if conv.magnitude is not None:
        w = w * conv.magnitude
    k = w.shape[0]
    y = F.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), padding=k // 2).permute(0, 2, 3, 1)
    return y + conv.bias if conv.bias is not None else y


def _tf_batch_norm(x, bn):
    mean = x.mean(dim=(0, 1, 2))
    var = ((x - mean) ** 2).mean(dim=(0, 1, 2))  # tf.nn.moments: the biased variance
    return (x - mean) / torch.sqrt(var + 1e-4) + bn.beta


def _tf_resnet(x, net):
    res = _tf_conv(x, net.inp)  # h_in
    out = _tf_conv(res, net.skips[0])  # skip_in
    for k, block in enumerate(net.blocks):
        inner = torch.relu(_tf_batch_norm(res, block.bn_in))
        inner = torch.relu(_tf_batch_norm(_tf_conv(inner, block.conv_0), block.bn_0))
        res = res + _tf_conv(inner, block.conv_out)
        out = out + _tf_conv(res, net.skips[k + 1])  # skip_k
    return _tf_conv(torch.relu(_tf_batch_norm(out, net.bn_out)), net.out)


def _tf_masked_aff_coupling(x, layer, mask_in):
    """masked_conv_aff_coupling(use_batch_norm=True) without its output batch norm, forward."""
    _, h, w, c = x.shape
    mask = torch.remainder(mask_in + torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1), 2).to(x.dtype)
    mask = mask.view(1, h, w, 1).expand(x.shape[0], h, w, 1)
    res = _tf_batch_norm(x * mask, layer.bn_in) * 2.0
    res = torch.relu(torch.cat([res, -res, mask], dim=3))
    res = _tf_resnet(res, layer.net)
    shift, log_rescaling = res[..., :c], res[..., c:]
    log_rescaling = layer.scale * torch.tanh(log_rescaling) * (1 - mask)
    shift = shift * (1 - mask)
    return (x + shift) * torch.exp(log_rescaling), log_rescaling


def _tf_channel_aff_coupling(x, layer, change_bottom):
    """conv_ch_aff_coupling(use_batch_norm=True) without its output batch norm, forward."""
    half = x.shape[3] // 2
    kept, canvas = (x[..., :half], x[..., half:]) if change_bottom else (x[..., half:], x[..., :half])
    res = _tf_batch_norm(kept, layer.bn_in)
    res = _tf_resnet(torch.relu(torch.cat([res, -res], dim=3)), layer.net)
    shift, log_rescaling = res[..., :half], layer.scale * torch.tanh(res[..., half:])
    changed = (canvas + shift) * torch.exp(log_rescaling)
    zeros = torch.zeros_like(log_rescaling)
    if change_bottom:
        return torch.cat([kept, changed], dim=3), torch.cat([zeros, log_rescaling], dim=3)
    return torch.cat([changed, kept], dim=3), torch.cat([log_rescaling, zeros], dim=3)


@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_authors_coupling_equals_the_tf_functions_on_fixed_tensors(mask, parity):
    """Parity 0 is the authors' coupling_0 (mask_in 1: conditioned on the even (i + j) positions;
    channel-wise: change_bottom, the first half kept). Training mode: batch statistics."""
    torch.manual_seed(0)
    layer = perturb_(AuthorsAffineCoupling(4, mask, parity, hidden_channels=5, num_blocks=2), 0.3).double()
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, log_det = layer(x)
    nhwc = x.permute(0, 2, 3, 1)
    if mask == "checkerboard":
        expected, log_diff = _tf_masked_aff_coupling(nhwc, layer, 1 - parity)
    else:
        expected, log_diff = _tf_channel_aff_coupling(nhwc, layer, parity == 0)
    torch.testing.assert_close(y, expected.permute(0, 3, 1, 2), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, log_diff.sum(dim=(1, 2, 3)), rtol=1e-10, atol=1e-10)
    assert log_det.abs().min() > 0.1 and not torch.allclose(y, x)


def test_authors_coupling_starts_as_their_initializers_and_keeps_running_statistics():
    torch.manual_seed(0)
    checker = AuthorsAffineCoupling(2, "checkerboard", 0, hidden_channels=8, num_blocks=1)
    channel = AuthorsAffineCoupling(4, "channel", 0, hidden_channels=8, num_blocks=1)
    assert checker.scale.item() == 0.0 and channel.scale.item() == 1.0  # rescaling_scale 0, scale 1
    x = torch.randn(4, 2, 4, 4)
    y, log_det = checker(x)  # s = 0 at the start, but the shift is not: no zero-initialized output
    assert torch.all(log_det == 0) and not torch.allclose(y, x)
    # conv_layer: U(-a, a) with a = sqrt(2 / c), magnitude a * sqrt(fan_in / 12), biases 0.
    conv = checker.net.out
    a = math.sqrt(2 / 8)
    assert conv.weight.abs().max() <= a and conv.weight.abs().max() > 0.9 * a
    torch.testing.assert_close(conv.magnitude, torch.full((4,), a * math.sqrt(8 / 12)))
    assert checker.net.inp.magnitude is None and checker.net.blocks[0].conv_0.bias is None
    # Running averages with decay 0.1 from (0, 1); eval mode uses them, so the layer is then per-example.
    bn = checker.bn_in
    b = checkerboard_mask(4, 4, 0)
    torch.testing.assert_close(bn.running_mean, 0.1 * (x * b).mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * (x * b).var(dim=(0, 2, 3), unbiased=False))
    checker.eval()
    torch.testing.assert_close(checker(x[:1])[0], checker(x)[0][:1])


def test_authors_network_widths_and_l2_follow_the_code():
    """dim = base_dim * 2**scale, channel-wise couplings 2 * dim; the L2 takes every "magnitude"
    and the checkerboard couplings' "rescaling_scale", not the channel-wise "scale" or BatchNorm."""
    model = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1)
    flow = model.flow
    assert model.hparams.coupling_network == "authors"
    widths = [[c.net.inp.weight.shape[0] for c in group] for group in (flow.checkerboard[0], flow.channelwise[0], flow.final)]
    assert widths == [[4] * 3, [8] * 3, [8] * 4]
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    # Magnitudes per coupling: 2 skips + block conv_out + output conv (1 block); output channels:
    # skips and conv_out the width, the output conv 2 x changed channels.
    def magnitudes(width, changed):
        return 3 * width + 2 * changed
    count = 3 * magnitudes(4, 1) + 3 * magnitudes(8, 2) + 4 * magnitudes(8, 2)
    expected = 0.25 * (count + 3 + 4)  # + one rescaling_scale per checkerboard coupling (7)
    assert model.weight_scale_l2().item() == pytest.approx(expected)


def test_checkpoints_without_the_option_load_as_the_plain_network(tmp_path):
    old = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1, coupling_network="plain")
    hparams = {k: v for k, v in dict(old.hparams).items() if k != "coupling_network"}
    checkpoint = {"hyper_parameters": {**hparams, "_class_path": "genmodels.RealNVP"}, "state_dict": old.state_dict(),
                  "genmodels": {"model_class": "genmodels.likelihood.realnvp.RealNVP", "iteration": 0}}
    loaded = build_model(checkpoint)
    assert isinstance(loaded.flow.final[0], AffineCoupling)
    y = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.eval().log_density(y), old.eval().log_density(y))
    new = RealNVP(**RealNVP.tiny())
    rebuilt = build_model({**checkpoint, "hyper_parameters": {**dict(new.hparams), "_class_path": "genmodels.RealNVP"},
                           "state_dict": new.state_dict()})
    assert isinstance(rebuilt.flow.final[0], AuthorsAffineCoupling)
    assert not any(isinstance(m, NormalizedConv2d) for m in loaded.modules())
