"""RealNVP: exact inverse, log-determinant against autograd, shapes, errors and sampling; the authors'
coupling networks, flow-level batch normalization and ordered squeeze against an independent
transcription of their TF functions."""

import math

import pytest
import torch
import yaml

from genmodels import RealNVP
import torch.nn.functional as F

from genmodels.checkpoints import build_model
from genmodels.likelihood.common import squeeze, unsqueeze
from genmodels.likelihood.realnvp import (
    AffineCoupling,
    AuthorsAffineCoupling,
    FlowBatchNorm,
    NormalizedConv2d,
    checkerboard_mask,
    ordered_squeeze,
    ordered_unsqueeze,
)
from tests.cli.common import EXPERIMENTS
from tests.genmodels.likelihood.helpers import brute_force_log_det, perturb_


def _model(shape=(1, 8, 8), num_scales=2, **kwargs) -> RealNVP:
    """Perturbed weights and running statistics moved by training batches, in eval mode."""
    torch.manual_seed(0)
    model = perturb_(RealNVP(image_shape=shape, num_scales=num_scales, hidden_channels=8, num_blocks=1, **kwargs), 0.1)
    with torch.no_grad():
        for _ in range(3):  # the flow-level BatchNorm then normalizes by something other than (0, 1)
            model.log_density(torch.rand(8, *shape))
    return model.eval()


def _random_running_statistics_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, FlowBatchNorm):
            norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=g))
            norm.running_var.copy_(0.2 + torch.rand(norm.running_var.shape, generator=g))
    return module


FLOW_OPTIONS = {"authors": {}, "before_flow_options": {"flow_batch_norm": False, "ordered_squeeze": False}}


@pytest.mark.parametrize("options", sorted(FLOW_OPTIONS))
@pytest.mark.parametrize("network", ["authors", "plain"])
@pytest.mark.parametrize("shape, num_scales", [((1, 8, 8), 2), ((3, 8, 8), 3), ((2, 4, 4), 1)])
def test_inverse_recovers_the_input(shape, num_scales, network, options):
    model = _model(shape, num_scales, coupling_network=network, **FLOW_OPTIONS[options])
    y = torch.rand(4, *shape)
    with torch.no_grad():
        latents, _ = model.encode(y)
        assert sum(z[0].numel() for z in latents) == y[0].numel()  # a bijection keeps the dimension
        assert (model.decode(latents) - y).abs().max() < 1e-4


@pytest.mark.parametrize("output_batch_norm", [False, True])
@pytest.mark.parametrize("layer_class", [AffineCoupling, AuthorsAffineCoupling])
@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_each_coupling_log_det_matches_autograd(mask, parity, layer_class, output_batch_norm):
    torch.manual_seed(0)
    layer = perturb_(layer_class(4, mask, parity, hidden_channels=6, num_blocks=1, output_batch_norm=output_batch_norm), 0.3)
    layer = _random_running_statistics_(layer.double().eval())
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    _, log_det = layer(x)
    assert log_det.item() == pytest.approx(brute_force_log_det(lambda v: [layer(v)[0]], x).item(), abs=1e-8)
    assert log_det.abs().item() > 0.1  # not trivially the identity
    assert torch.allclose(layer.inverse(layer(x)[0]), x, atol=1e-12)


@pytest.mark.parametrize("options", sorted(FLOW_OPTIONS))
@pytest.mark.parametrize("network", ["authors", "plain"])
def test_whole_bijection_log_det_matches_autograd(network, options):
    """Eval mode: the flow-level BatchNorm uses its running averages, a per-example bijection."""
    model = _model((1, 4, 4), 2, coupling_network=network, **FLOW_OPTIONS[options]).double()
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
                    coupling_network="plain", flow_batch_norm=False)
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
    assert args["coupling_network"] == "authors" and args["flow_batch_norm"] and args["ordered_squeeze"]
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


def _tf_batch_norm(x, bn, train=True):
    """batch_norm(scale=False, epsilon=1e-4, axes=[0, 1, 2]); train=False: the moving averages."""
    if train:
        mean = x.mean(dim=(0, 1, 2))
        var = ((x - mean) ** 2).mean(dim=(0, 1, 2))  # tf.nn.moments: the biased variance
    else:
        mean, var = bn.running_mean, bn.running_var
    return (x - mean) / torch.sqrt(var + 1e-4) + bn.beta


def _tf_resnet(x, net, train=True):
    res = _tf_conv(x, net.inp)  # h_in
    out = _tf_conv(res, net.skips[0])  # skip_in
    for k, block in enumerate(net.blocks):
        inner = torch.relu(_tf_batch_norm(res, block.bn_in, train))
        inner = torch.relu(_tf_batch_norm(_tf_conv(inner, block.conv_0), block.bn_0, train))
        res = res + _tf_conv(inner, block.conv_out)
        out = out + _tf_conv(res, net.skips[k + 1])  # skip_k
    return _tf_conv(torch.relu(_tf_batch_norm(out, net.bn_out, train)), net.out)


def _tf_batch_norm_log_diff(x, norm, train, moments):
    """batch_norm_log_diff(epsilon=1e-4, axes=[0, 1, 2], bn_lag=0): (mean, var + eps) it uses; in
    training the batch moments it moves its averages towards are appended to ``moments``."""
    if not train:
        return norm.running_mean, norm.running_var + 1e-4
    mean = x.mean(dim=(0, 1, 2))
    var = ((x - mean) ** 2).mean(dim=(0, 1, 2))
    moments.append((mean, var))
    return mean, var + 1e-4


def _tf_masked_aff_coupling(x, layer, mask_in, train=True, reverse=False, moments=None):
    """masked_conv_aff_coupling(use_batch_norm=True); ``bn_out`` where the layer has one."""
    _, h, w, c = x.shape
    mask = torch.remainder(mask_in + torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1), 2).to(x.dtype)
    mask = mask.view(1, h, w, 1).expand(x.shape[0], h, w, 1)
    res = _tf_batch_norm(x * mask, layer.bn_in, train) * 2.0
    res = torch.relu(torch.cat([res, -res, mask], dim=3))
    res = _tf_resnet(res, layer.net, train)
    shift, log_rescaling = res[..., :c], res[..., c:]
    log_rescaling = layer.scale * torch.tanh(log_rescaling) * (1 - mask)
    shift = shift * (1 - mask)
    norm = layer.output_norm
    if reverse:  # their sampling graph: bn_out with train=False undone first
        res, log_diff = x, -log_rescaling
        if norm is not None:
            mean, var = _tf_batch_norm_log_diff(x * (1 - mask), norm, False, moments)
            res = res * torch.exp(0.5 * torch.log(var) * (1 - mask)) + mean * (1 - mask)
            log_diff = log_diff + 0.5 * torch.log(var) * (1 - mask)
        return res * torch.exp(-log_rescaling) - shift, log_diff
    res, log_diff = (x + shift) * torch.exp(log_rescaling), log_rescaling
    if norm is not None:
        mean, var = _tf_batch_norm_log_diff(res * (1 - mask), norm, train, moments)
        res = (res - mean * (1 - mask)) * torch.exp(-0.5 * torch.log(var) * (1 - mask))
        log_diff = log_diff - 0.5 * torch.log(var) * (1 - mask)
    return res, log_diff


def _tf_channel_aff_coupling(x, layer, change_bottom, train=True, reverse=False, moments=None):
    """conv_ch_aff_coupling(use_batch_norm=True); ``bn_out`` where the layer has one."""
    half = x.shape[3] // 2
    kept, canvas = (x[..., :half], x[..., half:]) if change_bottom else (x[..., half:], x[..., :half])
    res = _tf_batch_norm(kept, layer.bn_in, train)
    res = _tf_resnet(torch.relu(torch.cat([res, -res], dim=3)), layer.net, train)
    shift, log_rescaling = res[..., :half], layer.scale * torch.tanh(res[..., half:])
    norm = layer.output_norm
    if reverse:
        changed, log_diff = canvas, -log_rescaling
        if norm is not None:
            mean, var = _tf_batch_norm_log_diff(canvas, norm, False, moments)
            changed = changed * torch.exp(0.5 * torch.log(var)) + mean
            log_diff = log_diff + 0.5 * torch.log(var)
        changed = changed * torch.exp(-log_rescaling) - shift
    else:
        changed, log_diff = (canvas + shift) * torch.exp(log_rescaling), log_rescaling
        if norm is not None:
            mean, var = _tf_batch_norm_log_diff(changed, norm, train, moments)
            changed = (changed - mean) * torch.exp(-0.5 * torch.log(var))
            log_diff = log_diff - 0.5 * torch.log(var)
    zeros = torch.zeros_like(log_diff)
    if change_bottom:
        return torch.cat([kept, changed], dim=3), torch.cat([zeros, log_diff], dim=3)
    return torch.cat([changed, kept], dim=3), torch.cat([log_diff, zeros], dim=3)


def _tf_coupling(x_nchw, layer, **kwargs):
    """The TF coupling matching ``layer`` (parity 0 = their mask_in 1 / change_bottom) on NCHW tensors."""
    nhwc = x_nchw.permute(0, 2, 3, 1)
    if layer.mask == "checkerboard":
        y, log_diff = _tf_masked_aff_coupling(nhwc, layer, 1 - layer.parity, **kwargs)
    else:
        y, log_diff = _tf_channel_aff_coupling(nhwc, layer, layer.parity == 0, **kwargs)
    return y.permute(0, 3, 1, 2), log_diff.sum(dim=(1, 2, 3))


@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_authors_coupling_equals_the_tf_functions_on_fixed_tensors(mask, parity):
    """Parity 0 is the authors' coupling_0 (mask_in 1: conditioned on the even (i + j) positions;
    channel-wise: change_bottom, the first half kept). Training mode: batch statistics. Without
    the flow-level ``bn_out`` (the next test has it)."""
    torch.manual_seed(0)
    layer = perturb_(AuthorsAffineCoupling(4, mask, parity, hidden_channels=5, num_blocks=2), 0.3).double()
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, log_det = layer(x)
    expected, expected_log_det = _tf_coupling(x, layer)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, expected_log_det, rtol=1e-10, atol=1e-10)
    assert log_det.abs().min() > 0.1 and not torch.allclose(y, x)


@pytest.mark.parametrize("mask, parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_authors_coupling_with_flow_batch_norm_equals_the_tf_functions_on_fixed_tensors(mask, parity):
    """``bn_out`` (batch_norm_log_diff): training with the batch's moments of ``x * (1 - mask)``
    (zeros included) and moving averages with decay 0.1; eval mode and the inverse with the averages."""
    torch.manual_seed(0)
    layer = perturb_(AuthorsAffineCoupling(4, mask, parity, hidden_channels=5, num_blocks=2, output_batch_norm=True), 0.3)
    layer = layer.double()
    norm = layer.output_norm
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5
    before = norm.running_mean.clone(), norm.running_var.clone()
    y, log_det = layer(x)
    moments = []
    expected, expected_log_det = _tf_coupling(x, layer, moments=moments)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, expected_log_det, rtol=1e-10, atol=1e-10)
    (mean, var), = moments  # assign_sub(decay * (average - batch moment)), the variance without eps
    torch.testing.assert_close(norm.running_mean, before[0] - 0.1 * (before[0] - mean), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(norm.running_var, before[1] - 0.1 * (before[1] - var), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(norm.running_mean, before[0])
    if mask == "channel":  # normalized: the changed half has batch mean 0 per channel
        half = y[:, 2:] if parity == 0 else y[:, :2]
        torch.testing.assert_close(half.mean(dim=(0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)

    layer.eval()
    _random_running_statistics_(layer, seed=2)
    y, log_det = layer(x)
    expected, expected_log_det = _tf_coupling(x, layer, train=False)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, expected_log_det, rtol=1e-10, atol=1e-10)
    inverse, inverse_log_det = _tf_coupling(y, layer, train=False, reverse=True)
    torch.testing.assert_close(layer.inverse(y), inverse, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inverse, x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=1e-10, atol=1e-10)


def test_flow_batch_norm_moves_only_the_changed_half_and_has_no_parameters():
    norm = FlowBatchNorm(2)
    assert not list(norm.parameters()) and {"running_mean", "running_var"} <= set(norm.state_dict())
    x = torch.randn(4, 2, 4, 4) * 3 + 1
    changed = 1 - checkerboard_mask(4, 4, 0)
    y, log_det = norm(x, changed)
    kept = (1 - changed).bool().expand_as(x)
    assert torch.equal(y[kept], x[kept]) and not torch.allclose(y[~kept], x[~kept])
    masked = x * changed  # the zeros of the kept half are in the statistics
    var = masked.var(dim=(0, 2, 3), unbiased=False) + 1e-4
    torch.testing.assert_close(log_det, torch.full((4,), -0.5 * 8 * torch.log(var).sum().item()))
    torch.testing.assert_close(norm.inverse(norm.eval()(x, changed)[0], changed), x)


# -- the authors' ordered squeeze (squeeze_2x2_ordered) ------------------------------------------


def _tf_squeeze_2x2(x):
    """squeeze_2x2 on NHWC: (B, H/2, 2, W/2, 2, C) -> (B, H/2, W/2, C, 2, 2) -> (B, H/2, W/2, 4C)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, 4 * c)


def _tf_unsqueeze_2x2(x):
    b, h, w, c4 = x.shape
    return x.reshape(b, h, w, c4 // 4, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c4 // 4)


def _tf_squeeze_2x2_ordered(x, reverse=False):
    """squeeze_2x2_ordered on NHWC: a stride-2 2x2 convolution (its transpose for ``reverse``) with
    0/1 filters: input channel c at block position (i, j) goes to output 4c + k, k read from their
    SQUEEZE_MATRIX, and the outputs are then reordered by k first, c second."""
    channels = x.shape[3] // 4 if reverse else x.shape[3]
    k_at = torch.zeros(2, 2, 4, dtype=x.dtype)
    for (i, j), k in {(0, 0): 0, (0, 1): 2, (1, 0): 3, (1, 1): 1}.items():
        k_at[i, j, k] = 1.0
    weights = torch.zeros(2, 2, channels, 4 * channels, dtype=x.dtype)
    for c in range(channels):
        weights[:, :, c, 4 * c:4 * c + 4] = k_at
    weights = weights[..., [4 * c + k for k in range(4) for c in range(channels)]]
    torch_weights = weights.permute(3, 2, 0, 1)  # (4C, C, 2, 2): conv2d's (out, in) and conv_transpose2d's (in, out)
    nchw = x.permute(0, 3, 1, 2)
    out = F.conv_transpose2d(nchw, torch_weights, stride=2) if reverse else F.conv2d(nchw, torch_weights, stride=2)
    return out.permute(0, 2, 3, 1)


def test_ordered_squeeze_equals_the_tf_squeeze_2x2_ordered_on_fixed_tensors():
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    squeezed = ordered_squeeze(x)
    expected = _tf_squeeze_2x2_ordered(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(squeezed, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(ordered_unsqueeze(squeezed),
                               _tf_squeeze_2x2_ordered(squeezed.permute(0, 2, 3, 1), reverse=True).permute(0, 3, 1, 2))
    assert torch.equal(ordered_unsqueeze(squeezed), x)
    # The first half (what goes on to the next scale) is the (i + j) even checkerboard of every channel.
    positions = torch.arange(16.0).view(1, 1, 4, 4)
    kept = ordered_squeeze(positions)[:, :2].flatten().tolist()
    assert sorted(kept) == [i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    # The plain squeeze keeps the top row of every 2x2 block instead.
    assert sorted(squeeze(positions)[:, :2].flatten().tolist()) == [i * 4 + j for i in range(0, 4, 2) for j in range(4)]


def test_the_flow_factors_out_as_the_tf_recursion_on_fixed_tensors():
    """rec_masked_conv_coupling: checkerboard couplings, squeeze_2x2, channel-wise couplings,
    unsqueeze_2x2, squeeze_2x2_ordered, the first half to the next scale, the second factored out."""
    model = _model((2, 4, 4), 2).double()
    flow = model.flow
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    latents, log_det = flow(x)

    def nhwc(v):
        return v.permute(0, 2, 3, 1)

    def nchw(v):
        return v.permute(0, 3, 1, 2)

    h, expected_log_det = x, torch.zeros(3, dtype=torch.float64)
    for layer in flow.checkerboard[0]:
        h, inc = _tf_coupling(h, layer, train=False)
        expected_log_det = expected_log_det + inc
    h = nchw(_tf_squeeze_2x2(nhwc(h)))
    for layer in flow.channelwise[0]:
        h, inc = _tf_coupling(h, layer, train=False)
        expected_log_det = expected_log_det + inc
    h = _tf_squeeze_2x2_ordered(_tf_unsqueeze_2x2(nhwc(h)))
    h, factored = nchw(h[..., :4]), nchw(h[..., 4:])
    for layer in flow.final:
        h, inc = _tf_coupling(h, layer, train=False)
        expected_log_det = expected_log_det + inc
    torch.testing.assert_close(latents[0], factored, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(latents[1], h, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, expected_log_det, rtol=1e-10, atol=1e-10)


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
    old = RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1, coupling_network="plain",
                  flow_batch_norm=False, ordered_squeeze=False)
    hparams = {k: v for k, v in dict(old.hparams).items()
               if k not in ("coupling_network", "flow_batch_norm", "ordered_squeeze")}
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


def test_checkpoints_without_the_flow_options_load_without_flow_batch_norm_and_with_the_plain_squeeze():
    """An authors-network checkpoint written before ``flow_batch_norm`` and ``ordered_squeeze``
    existed records neither: `build_model` reads it as the model of its time (both False)."""
    torch.manual_seed(0)
    old = perturb_(RealNVP(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1,
                           flow_batch_norm=False, ordered_squeeze=False), 0.1)
    hparams = {k: v for k, v in dict(old.hparams).items() if k not in ("flow_batch_norm", "ordered_squeeze")}
    checkpoint = {"hyper_parameters": {**hparams, "_class_path": "genmodels.RealNVP"}, "state_dict": old.state_dict(),
                  "genmodels": {"model_class": "genmodels.likelihood.realnvp.RealNVP", "iteration": 0}}
    loaded = build_model(checkpoint)
    assert not loaded.flow.ordered_squeeze and not any(isinstance(m, FlowBatchNorm) for m in loaded.modules())
    assert isinstance(loaded.flow.final[0], AuthorsAffineCoupling)
    y = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.eval().log_density(y), old.eval().log_density(y))
    new = RealNVP(**RealNVP.tiny())
    rebuilt = build_model({**checkpoint, "hyper_parameters": {**dict(new.hparams), "_class_path": "genmodels.RealNVP"},
                           "state_dict": new.state_dict()})
    assert rebuilt.flow.ordered_squeeze and any(isinstance(m, FlowBatchNorm) for m in rebuilt.modules())


def test_flow_batch_norm_statistics_are_saved_moved_by_training_only_and_exact_in_eval():
    model = RealNVP(**RealNVP.tiny())
    assert model.hparams.flow_batch_norm and model.hparams.ordered_squeeze  # the authors' defaults
    keys = [k for k in model.state_dict() if "output_norm.running_" in k]
    assert len(keys) == 2 * 10  # every coupling: 3 + 3 + 4
    y = torch.rand(6, 1, 8, 8)
    model.log_density(y)  # training: batch statistics, averages moved
    moved = {k: v.clone() for k, v in model.state_dict().items() if k in keys}
    assert not torch.equal(moved[keys[0]], torch.zeros_like(moved[keys[0]]))
    model.eval()
    with torch.no_grad():
        full = model.log_density(y)
        # Eval mode is per-example: no example's density depends on the others in its batch.
        torch.testing.assert_close(model.log_density(y[:2]), full[:2])
        model.sample(3, generator=torch.Generator().manual_seed(0))
    model.train()
    model.sample(3, generator=torch.Generator().manual_seed(0))  # sampling uses the averages in any mode
    assert model.training and all(torch.equal(model.state_dict()[k], moved[k]) for k in keys)


def test_a_state_dict_without_flow_batch_norm_loads_into_a_model_with_it_at_the_initial_averages():
    """Resuming an older run with ``flow_batch_norm`` switched on (announced as applied): its layers
    start from the averages of a new run, (0, 1), and everything else loads as saved."""
    old = perturb_(RealNVP(**RealNVP.tiny(), flow_batch_norm=False), 0.1)
    new = RealNVP(**RealNVP.tiny())
    new.log_density(torch.rand(4, 1, 8, 8))  # moves the averages away from (0, 1)
    new.load_state_dict(old.state_dict())  # strict
    norms = [m for m in new.modules() if isinstance(m, FlowBatchNorm)]
    assert norms and all(torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    assert all(torch.equal(m.running_var, torch.ones_like(m.running_var)) for m in norms)
    assert torch.equal(new.state_dict()["flow.final.0.scale"], old.state_dict()["flow.final.0.scale"])
