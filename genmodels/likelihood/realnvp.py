"""RealNVP: density estimation with real-valued non-volume preserving transformations.

Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", arXiv:1605.08803.

A bijection ``f`` from dequantized images to Gaussian latents built from affine coupling layers
(Eq. 7-9): half of the input, chosen by a binary mask ``b``, passes unchanged and parametrizes
a scale ``exp(s)`` and translation ``t`` of the other half, so ``f^-1`` costs one pass and the
Jacobian is triangular with ``log|det| = sum (1 - b) * s`` (Eq. 6). The density follows from the
change of variables (Eq. 3), ``log p(y) = log N(f(y); 0, I) + log|det df/dy|``.

Implemented:

- affine coupling with checkerboard and channel-wise masks (Sec. 3.4, Fig. 3), ``s`` bounded by
  ``tanh`` with a learned scale. The ``s, t`` networks (``coupling_network``): ``authors`` (default),
  those of the authors' code (tensorflow/models research/real_nvp/real_nvp_multiscale_dataset.py,
  ``masked_conv_aff_coupling``, ``conv_ch_aff_coupling``, ``resnet``, ``residual_block``):
  BatchNorm of the conditioning half (x2 for the checkerboard), concatenated ReLU ``[h, -h]``,
  a ResNet with BatchNorm inside its blocks and a skip sum of 1x1 convolutions, weight
  normalization with magnitudes where they have them, one scalar ``tanh`` scale per coupling
  (``rescaling_scale`` 0 at the start for the checkerboard, ``scale`` 1 channel-wise), the
  changed half ``(x + t) * exp(s)``, widths ``hidden_channels * 2**scale`` (x2 channel-wise);
  ``plain``, this project's first network: weight-normalized ResNets whose last layer starts at
  zero (every coupling starts as the identity), per-channel scales, ``x * exp(s) + t``;
- the multi-scale architecture (Sec. 3.6): per scale three checkerboard couplings, a squeeze,
  three channel-wise couplings, then half of the variables are factored out (Eq. 14-16); the last
  scale is four checkerboard couplings; the factored-out variables get the N(0, I) prior. With
  ``ordered_squeeze`` (default) the half that goes on is chosen as by the authors'
  ``squeeze_2x2_ordered``: one checkerboard of every channel;
- batch normalization as a flow layer (Sec. 3.7, ``flow_batch_norm``, default): the authors'
  ``bn_out`` (``batch_norm_log_diff``) at the end of every coupling, normalizing the changed half
  with batch statistics in training and running averages in eval mode and when sampling, its
  ``-0.5 log(var + 1e-4)`` in the log-determinant; no learned scale or shift, and, as in their
  code with it, no ``scale_shift`` on ``s``. Training densities depend on the batch; evaluation
  (eval mode) is exact and per-example;
- the logit pre-processing of Sec. 4.1, in its symmetric form ``logit(a + (1 - 2a) y)``, and its
  log-determinant; uniform dequantization and bits/dim as in `genmodels.likelihood.common`;
- sampling ``z ~ N(0, T^2 I)`` with temperature ``T``.

- the authors' L2 regularization (tensorflow/models research/real_nvp,
  ``l2_coeff * sum(v^2)`` over the weight-normalization magnitudes and the couplings' ``tanh``
  scales, coefficient 5e-5; "L2 regularization on the weight scale parameters", Sec. 4.1) and
  nothing else: the authors add it to the loss in nats per image, so here it is divided by
  ``D ln 2`` to keep its weight relative to the bits/dim loss.

Checkpoints that predate ``coupling_network``, ``flow_batch_norm`` or ``ordered_squeeze`` load
as the model of their time (``checkpoint_defaults``: plain, no flow BatchNorm, plain squeeze).

Not implemented: the paper's ResNet depth and width (set by ``hidden_channels`` and ``num_blocks``).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from genmodels.likelihood.common import (
    LikelihoodModel,
    check_at_least_one,
    check_condition_free,
    check_squeezable,
    dequantize,
    flow_bits_per_dim,
    quantize,
    squeeze,
    unsqueeze,
)
from genmodels.compat import register_load_state_dict_pre_hook
from genmodels.errors import InvalidValue

__all__ = ["RealNVP", "RealNVPFlow", "AffineCoupling", "AuthorsAffineCoupling", "FlowBatchNorm", "LogitTransform",
           "checkerboard_mask", "ordered_squeeze", "ordered_unsqueeze"]

_LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed per example (B,)."""
    return -0.5 * (z.pow(2) + _LOG_2PI).flatten(1).sum(1)


def checkerboard_mask(height: int, width: int, parity: int, device: Any = None) -> Tensor:
    """(1, 1, H, W) float mask ``b`` with ``b[i, j] = 1`` where ``(i + j) % 2 == parity`` (Fig. 3, left)."""
    rows = torch.arange(height, device=device).view(-1, 1)
    cols = torch.arange(width, device=device).view(1, -1)
    return ((rows + cols) % 2 == parity).float().view(1, 1, height, width)


# ---------------------------------------------------------------------------------------------
# The s and t networks


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with weight-normalized 3x3 convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = weight_norm(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv2 = weight_norm(nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ScaleTranslationNet(nn.Module):
    """ResNet giving ``(s, t)`` for the changed half from the unchanged half (Sec. 4.1)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.inp = weight_norm(nn.Conv2d(in_channels, hidden_channels, 3, padding=1))
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_channels) for _ in range(num_blocks)))
        self.out = nn.Conv2d(hidden_channels, 2 * out_channels, 3, padding=1)
        # s = t = 0 at the start: every coupling is the identity, so training starts from the
        # (well-conditioned) logit-space density instead of a random bijection.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.out(F.relu(self.blocks(self.inp(x)))).chunk(2, dim=1)
        return s, t


# The authors' s and t networks (tensorflow/models research/real_nvp/real_nvp_multiscale_dataset.py,
# ``coupling_network: authors``)


class NormalizedConv2d(nn.Module):
    """Weight-normalized convolution as the authors' ``conv_layer(weight_norm=True)``: each output
    filter is ``v / ||v||``, times a learned ``magnitude`` only where the authors have one
    (``scale=True``); otherwise unit-norm filters. Initial ``v`` ~ U(-a, a) with ``a = sqrt(2 / c)``
    (their ``stddev``, c the channels they pass) and ``magnitude = a sqrt(fan_in / 12)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stddev_channels: int,
                 magnitude: bool, bias: bool) -> None:
        super().__init__()
        stddev = math.sqrt(2.0 / stddev_channels)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size).uniform_(-stddev, stddev))
        fan_in = in_channels * kernel_size * kernel_size
        self.magnitude = nn.Parameter(torch.full((out_channels,), stddev * math.sqrt(fan_in / 12))) if magnitude else None
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight / self.weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        if self.magnitude is not None:
            weight = weight * self.magnitude.view(-1, 1, 1, 1)
        return F.conv2d(x, weight, self.bias, padding=self.padding)


class ShiftBatchNorm(nn.Module):
    """The authors' ``batch_norm(scale=False, epsilon=1e-4)``: normalized by the batch's mean and
    (biased) variance over batch and space while training, by running averages (updated with
    decay 0.1, from 0 and 1) in eval mode, then a learned shift; no learned scale."""

    def __init__(self, channels: int, eps: float = 1e-4, decay: float = 0.1) -> None:
        super().__init__()
        self.eps, self.decay = eps, decay
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                self.running_mean.sub_(self.decay * (self.running_mean - mean))
                self.running_var.sub_(self.decay * (self.running_var - var))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + self.eps) + self.beta.view(1, -1, 1, 1)


class FlowBatchNorm(nn.Module):
    """The authors' batch normalization as a flow layer (``batch_norm_log_diff``, their ``bn_out``
    after every coupling): ``y = (x - mean) / sqrt(var + eps)`` on the changed variables only,
    ``log|det| = -0.5 * log(var + eps)`` per changed variable; no learned scale or shift.

    Training: the batch's mean and biased variance per channel over batch and space, of
    ``x * changed`` (the unchanged positions count as zeros in the checkerboard's statistics, as in
    their code), with gradients through them; the running averages (decay 0.1 from 0 and 1) move
    towards them. Eval mode: the running averages, so the layer is a fixed per-example bijection.
    `inverse` always uses the running averages: the authors build their sampling graph that way.
    """

    def __init__(self, channels: int, eps: float = 1e-4, decay: float = 0.1) -> None:
        super().__init__()
        self.eps, self.decay = eps, decay
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        register_load_state_dict_pre_hook(self, self._start_absent_statistics)

    def _start_absent_statistics(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # A checkpoint written without flow_batch_norm, resumed with it (the resume check announces
        # the change as applied): the layer starts from its initial averages, as in a new run.
        names = [prefix + "running_mean", prefix + "running_var"]
        if not any(name in state_dict for name in names):
            state_dict.update({names[0]: torch.zeros_like(self.running_mean), names[1]: torch.ones_like(self.running_var)})

    def _statistics(self, x: Tensor, changed: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean, self.running_var + self.eps
        masked = x if changed is None else x * changed
        mean = masked.mean(dim=(0, 2, 3))
        var = (masked - mean.view(1, -1, 1, 1)).pow(2).mean(dim=(0, 2, 3))
        with torch.no_grad():  # the running variance stores the batch variance without eps
            self.running_mean.sub_(self.decay * (self.running_mean - mean))
            self.running_var.sub_(self.decay * (self.running_var - var))
        return mean, var + self.eps

    def forward(self, x: Tensor, changed: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """``changed``: a 0/1 mask broadcastable to ``x`` of the variables to normalize (all if None)."""
        mean, var = self._statistics(x, changed)
        shift, log_scale = mean.view(1, -1, 1, 1), -0.5 * torch.log(var).view(1, -1, 1, 1)
        if changed is not None:
            shift, log_scale = shift * changed, log_scale * changed
        return (x - shift) * torch.exp(log_scale), log_scale.expand_as(x).flatten(1).sum(1)

    def inverse(self, y: Tensor, changed: Optional[Tensor] = None) -> Tensor:
        shift = self.running_mean.view(1, -1, 1, 1)
        log_scale = 0.5 * torch.log(self.running_var + self.eps).view(1, -1, 1, 1)
        if changed is not None:
            shift, log_scale = shift * changed, log_scale * changed
        return y * torch.exp(log_scale) + shift


class AuthorsResidualBlock(nn.Module):
    """``x + conv(relu(bn(conv(relu(bn(x))))))``: the inner 3x3 convolution has unit-norm filters
    and no bias (BatchNorm follows), the outer one a magnitude and a bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_in, self.bn_0 = ShiftBatchNorm(channels), ShiftBatchNorm(channels)
        self.conv_0 = NormalizedConv2d(channels, channels, 3, channels, magnitude=False, bias=False)
        self.conv_out = NormalizedConv2d(channels, channels, 3, channels, magnitude=True, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_out(F.relu(self.bn_0(self.conv_0(F.relu(self.bn_in(x))))))


class AuthorsResNet(nn.Module):
    """The authors' ``resnet(skip=True)``: a 3x3 input convolution, residual blocks, and a skip sum
    of 1x1 convolutions of the input features and of every block's output, then BatchNorm, ReLU and
    a 1x1 output convolution."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.inp = NormalizedConv2d(in_channels, hidden_channels, 3, in_channels, magnitude=False, bias=True)

        def skip() -> NormalizedConv2d:
            return NormalizedConv2d(hidden_channels, hidden_channels, 1, hidden_channels, magnitude=True, bias=True)

        self.skips = nn.ModuleList(skip() for _ in range(num_blocks + 1))
        self.blocks = nn.ModuleList(AuthorsResidualBlock(hidden_channels) for _ in range(num_blocks))
        self.bn_out = ShiftBatchNorm(hidden_channels)
        self.out = NormalizedConv2d(hidden_channels, out_channels, 1, hidden_channels, magnitude=True, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        total = self.skips[0](h)
        for block, skip in zip(self.blocks, self.skips[1:]):
            h = block(h)
            total = total + skip(h)
        return self.out(F.relu(self.bn_out(total)))


class AuthorsAffineCoupling(nn.Module):
    """The authors' affine coupling (``masked_conv_aff_coupling`` / ``conv_ch_aff_coupling``).

    The conditioning half ``h`` goes through BatchNorm (times 2 for the checkerboard), then the
    concatenated ReLU ``[relu(h), relu(-h)]`` (with the mask as an extra channel for the
    checkerboard) into `AuthorsResNet`, whose output splits into a shift ``t`` (first half) and
    a raw log-scale; ``s = scale * tanh(raw)`` with ONE scalar ``scale``: 0 at the start for the
    checkerboard (``rescaling_scale``, L2-regularized), 1 for the channel-wise coupling (``scale``,
    not regularized). The changed half becomes ``(x + t) * exp(s)`` (shift first), log|det| = sum s.
    ``output_batch_norm``: then `FlowBatchNorm` of the changed half, inside the coupling as the
    authors' ``bn_out``.
    """

    def __init__(self, channels: int, mask: Literal["checkerboard", "channel"], parity: int,
                 hidden_channels: int, num_blocks: int, output_batch_norm: bool = False) -> None:
        super().__init__()
        self.mask, self.parity = mask, parity
        if mask == "channel":
            if channels % 2:
                raise InvalidValue(f"a channel-wise coupling needs an even number of channels, got {channels}")
            kept, changed, extra = channels // 2, channels // 2, 0
        else:
            kept, changed, extra = channels, channels, 1
        self.bn_in = ShiftBatchNorm(kept)
        self.net = AuthorsResNet(2 * kept + extra, hidden_channels, 2 * changed, num_blocks)
        self.scale = nn.Parameter(torch.tensor(0.0 if mask == "checkerboard" else 1.0))
        self.scale_regularized = mask == "checkerboard"  # the authors' L2 names "rescaling_scale" only
        self.output_norm = FlowBatchNorm(changed) if output_batch_norm else None

    def _scale_shift(self, kept: Tensor, b: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        h = self.bn_in(kept)
        if b is not None:
            h = 2 * h
        features = [h, -h] if b is None else [h, -h, b.expand(h.shape[0], -1, -1, -1)]
        t, raw_s = self.net(F.relu(torch.cat(features, dim=1))).chunk(2, dim=1)
        return self.scale * torch.tanh(raw_s), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mask == "checkerboard":
            b = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device).to(x.dtype)
            s, t = self._scale_shift(x * b, b)
            s, t = s * (1 - b), t * (1 - b)
            return normalize_output(self.output_norm, (x + t) * torch.exp(s), s.flatten(1).sum(1), 1 - b)
        kept, changed = split_channels(x, self.parity)
        s, t = self._scale_shift(kept, None)
        changed, log_det = normalize_output(self.output_norm, (changed + t) * torch.exp(s), s.flatten(1).sum(1), None)
        return join_channels(kept, changed, self.parity), log_det

    def inverse(self, y: Tensor) -> Tensor:
        if self.mask == "checkerboard":
            b = checkerboard_mask(y.shape[2], y.shape[3], self.parity, y.device).to(y.dtype)
            s, t = self._scale_shift(y * b, b)  # the normalization leaves the conditioning half alone
            s, t = s * (1 - b), t * (1 - b)
            return denormalize_output(self.output_norm, y, 1 - b) * torch.exp(-s) - t
        kept, changed = split_channels(y, self.parity)
        s, t = self._scale_shift(kept, None)
        return join_channels(kept, denormalize_output(self.output_norm, changed, None) * torch.exp(-s) - t, self.parity)


# ---------------------------------------------------------------------------------------------
# Flow layers: forward(x) -> (y, log|det J|) and inverse(y) -> x


class AffineCoupling(nn.Module):
    """Affine coupling layer with a checkerboard or channel-wise mask (Eq. 7-9).

    ``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))``; the checkerboard network also sees
    the mask ``b`` itself as an input channel, so it knows which positions it conditions on.
    ``parity`` picks the half that is transformed; alternating it lets every variable change.
    ``output_batch_norm``: then `FlowBatchNorm` of the changed half, as in `AuthorsAffineCoupling`.
    """

    def __init__(
        self,
        channels: int,
        mask: Literal["checkerboard", "channel"],
        parity: int,
        hidden_channels: int,
        num_blocks: int,
        output_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.mask, self.parity = mask, parity
        if mask == "channel":
            if channels % 2:
                raise InvalidValue(f"a channel-wise coupling needs an even number of channels, got {channels}")
            in_channels, out_channels = channels // 2, channels // 2
        else:
            in_channels, out_channels = channels + 1, channels
        self.net = ScaleTranslationNet(in_channels, out_channels, hidden_channels, num_blocks)
        # s = scale * tanh(raw): bounded log-scales keep exp(s) from overflowing early in training.
        self.scale = nn.Parameter(torch.ones(1, out_channels, 1, 1))
        self.output_norm = FlowBatchNorm(out_channels) if output_batch_norm else None

    def _scale_shift(self, conditioner: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(conditioner)
        return self.scale * torch.tanh(raw_s), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mask == "checkerboard":
            b = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device).to(x.dtype)
            s, t = self._scale_shift(torch.cat([x * b, b.expand(x.shape[0], -1, -1, -1)], dim=1))
            s, t = s * (1 - b), t * (1 - b)  # Eq. 9: the masked half passes unchanged
            return normalize_output(self.output_norm, x * torch.exp(s) + t, s.flatten(1).sum(1), 1 - b)
        kept, changed = self._split(x)
        s, t = self._scale_shift(kept)
        changed, log_det = normalize_output(self.output_norm, changed * torch.exp(s) + t, s.flatten(1).sum(1), None)
        return self._join(kept, changed), log_det

    def inverse(self, y: Tensor) -> Tensor:
        if self.mask == "checkerboard":
            b = checkerboard_mask(y.shape[2], y.shape[3], self.parity, y.device).to(y.dtype)
            s, t = self._scale_shift(torch.cat([y * b, b.expand(y.shape[0], -1, -1, -1)], dim=1))
            s, t = s * (1 - b), t * (1 - b)
            return (denormalize_output(self.output_norm, y, 1 - b) - t) * torch.exp(-s)
        kept, changed = self._split(y)
        s, t = self._scale_shift(kept)
        return self._join(kept, (denormalize_output(self.output_norm, changed, None) - t) * torch.exp(-s))

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return split_channels(x, self.parity)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return join_channels(kept, changed, self.parity)


def normalize_output(norm: Optional[FlowBatchNorm], y: Tensor, log_det: Tensor,
                     changed: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """A coupling's output and log|det| after its optional `FlowBatchNorm` of the ``changed`` half."""
    if norm is None:
        return y, log_det
    y, norm_log_det = norm(y, changed)
    return y, log_det + norm_log_det


def denormalize_output(norm: Optional[FlowBatchNorm], y: Tensor, changed: Optional[Tensor]) -> Tensor:
    """The inverse of `normalize_output`'s normalization."""
    return y if norm is None else norm.inverse(y, changed)


def split_channels(x: Tensor, parity: int) -> tuple[Tensor, Tensor]:
    """(kept, changed) halves of the channels: parity 0 keeps the first half."""
    first, second = x.chunk(2, dim=1)
    return (first, second) if parity == 0 else (second, first)


def join_channels(kept: Tensor, changed: Tensor, parity: int) -> Tensor:
    """The inverse of `split_channels`."""
    return torch.cat([kept, changed] if parity == 0 else [changed, kept], dim=1)


class LogitTransform(nn.Module):
    """``y`` in [0, 1) -> ``logit(a + (1 - 2a) y)`` (Sec. 4.1), so the flow works on the real line.

    The paper writes ``logit(a + (1 - a) y)``; the symmetric form keeps both ends ``a`` away from
    0 and 1. Its log-determinant is ``sum log(1 - 2a) - log(p) - log(1 - p)`` with ``p`` the
    squashed value.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * y
        log_det = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return torch.log(p) - torch.log1p(-p), log_det.flatten(1).sum(1)

    def inverse(self, z: Tensor) -> Tensor:
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)


# ---------------------------------------------------------------------------------------------
# The multi-scale architecture (Sec. 3.6)

# The authors' squeeze_2x2_ordered: the (row, column) of each 2x2 block that fills each quarter of
# the output channels. The first half, (0, 0) and (1, 1), is a checkerboard: it goes on to the next
# scale and the other checkerboard is factored out.
_ORDERED_OFFSETS = ((0, 0), (1, 1), (0, 1), (1, 0))


def ordered_squeeze(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2), channels grouped by block position in `_ORDERED_OFFSETS`."""
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise InvalidValue(f"squeeze needs an even height and width, got {x.shape[2]}x{x.shape[3]}")
    return torch.cat([x[:, :, i::2, j::2] for i, j in _ORDERED_OFFSETS], dim=1)


def ordered_unsqueeze(x: Tensor) -> Tensor:
    """The inverse of `ordered_squeeze`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    b, c4, h, w = x.shape
    at = dict(zip(_ORDERED_OFFSETS, x.chunk(4, dim=1)))
    # (B, C, H, 2, W, 2) with the block row before W and the block column last, then interleaved.
    blocks = torch.stack([torch.stack([at[(i, 0)], at[(i, 1)]], dim=-1) for i in (0, 1)], dim=-3)
    return blocks.reshape(b, c4 // 4, 2 * h, 2 * w)


class RealNVPFlow(nn.Module):
    """Multi-scale RealNVP bijection ``x`` (B, C, H, W) -> latents, one per scale (Eq. 14-16).

    Scales ``1 .. L-1``: 3 checkerboard couplings, squeeze, 3 channel-wise couplings, factor out
    half of the channels. Scale ``L``: 4 checkerboard couplings. ``latent_shapes`` lists the
    shape of every factored-out latent, the last one being the final scale's output.

    ``flow_batch_norm``: every coupling ends with `FlowBatchNorm` of its changed half.
    ``ordered_squeeze``: the factored-out half is chosen as the authors do: the channel-wise
    couplings' squeeze is undone and `ordered_squeeze` applied, so the variables that go on are
    one checkerboard of every channel; otherwise the second half of the squeezed channels.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_scales: int, hidden_channels: int, num_blocks: int,
                 coupling_network: Literal["authors", "plain"] = "plain", flow_batch_norm: bool = False,
                 ordered_squeeze: bool = False) -> None:
        super().__init__()
        channels, height, width = image_shape
        authors = coupling_network == "authors"
        layer = AuthorsAffineCoupling if authors else AffineCoupling
        self.ordered_squeeze = ordered_squeeze

        def couplings(c: int, mask: Literal["checkerboard", "channel"], n: int, hidden: int) -> nn.ModuleList:
            return nn.ModuleList(layer(c, mask, k % 2, hidden, num_blocks, flow_batch_norm) for k in range(n))

        def width_at(scale: int) -> int:
            # The authors double the width at every scale (dim = base_dim * 2**scale_idx), and
            # their channel-wise couplings use twice that; the plain network keeps one width.
            return hidden_channels * 2**scale if authors else hidden_channels

        self.checkerboard = nn.ModuleList()
        self.channelwise = nn.ModuleList()
        self.latent_shapes: list[tuple[int, int, int]] = []
        for scale in range(num_scales - 1):
            self.checkerboard.append(couplings(channels, "checkerboard", 3, width_at(scale)))
            self.channelwise.append(couplings(4 * channels, "channel", 3, (2 if authors else 1) * width_at(scale)))
            channels, height, width = 2 * channels, height // 2, width // 2
            self.latent_shapes.append((channels, height, width))
        self.final = couplings(channels, "checkerboard", 4, width_at(num_scales - 1))
        self.latent_shapes.append((channels, height, width))

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """``x`` -> (latents, log|det df/dx| per example)."""
        log_det = x.new_zeros(x.shape[0])
        latents = []
        for checkerboard, channelwise in zip(self.checkerboard, self.channelwise):
            x, log_det = _run(checkerboard, x, log_det)
            x, log_det = _run(channelwise, squeeze(x), log_det)
            if self.ordered_squeeze:
                x = ordered_squeeze(unsqueeze(x))
            x, z = x.chunk(2, dim=1)  # Eq. 14: z_i is factored out, h_i goes on to the next scale
            latents.append(z)
        x, log_det = _run(self.final, x, log_det)
        return latents + [x], log_det

    def inverse(self, latents: list[Tensor]) -> Tensor:
        """Latents (as returned by `forward`) -> ``x``."""
        x = latents[-1]
        for layer in reversed(self.final):
            x = layer.inverse(x)
        for scale in reversed(range(len(self.checkerboard))):
            x = torch.cat([x, latents[scale]], dim=1)
            if self.ordered_squeeze:
                x = squeeze(ordered_unsqueeze(x))
            for layer in reversed(self.channelwise[scale]):
                x = layer.inverse(x)
            x = unsqueeze(x)
            for layer in reversed(self.checkerboard[scale]):
                x = layer.inverse(x)
        return x


def _run(layers: nn.ModuleList, x: Tensor, log_det: Tensor) -> tuple[Tensor, Tensor]:
    for layer in layers:
        x, layer_log_det = layer(x)
        log_det = log_det + layer_log_det
    return x, log_det


# ---------------------------------------------------------------------------------------------


class RealNVP(LikelihoodModel):
    """RealNVP trained by maximum likelihood on uniformly dequantized images.

    The full bijection, from ``y = (x + u) / 256`` in [0, 1)^D to the latents, is
    `LogitTransform` then `RealNVPFlow`; bits/dim counts both log-determinants and the
    ``D log 256`` of the dequantization scaling.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule; H and W must be divisible by
            ``2 ** (num_scales - 1)``.
        num_scales: scales of the multi-scale architecture (``num_scales - 1`` squeezes).
        hidden_channels: feature maps of the ``s, t`` ResNets.
        num_blocks: residual blocks per ``s, t`` ResNet.
        alpha: the logit pre-processing's margin ``a`` (0.05 in the paper).
        lr: Adam learning rate.
        l2_coefficient: the authors' ``l2_coeff`` (5e-5) on the weight-norm magnitudes and coupling
            scales only (see `weight_scale_l2`); 0 disables it.
        warmup_iterations: linear learning-rate warm-up.
        coupling_network: ``authors`` (default): the s/t networks of the authors' code
            (`AuthorsAffineCoupling`: BatchNorm inside, concatenated-ReLU input, skip sums, a scalar
            ``tanh`` scale starting at 0, width ``hidden_channels * 2**scale``, twice that in the
            channel-wise couplings); ``plain``: this project's first network (`AffineCoupling`:
            weight-normalized ResNet, zero-initialized output, per-channel scale at 1, one width).
            Checkpoints written before this option existed record none and load as ``plain``.
        flow_batch_norm: the authors' batch normalization as a flow layer at the end of every
            coupling (`FlowBatchNorm`, their ``bn_out``; Sec. 3.7): batch statistics in training,
            running averages in eval mode and sampling, so evaluation is exact and per-example.
        ordered_squeeze: factor out the half of the variables the authors do (`ordered_squeeze`,
            their ``squeeze_2x2_ordered``: one checkerboard of each channel goes on); ``False``:
            the second half of the squeezed channels. Checkpoints that record neither of these two
            options load with both ``False``, the model of their time.

    Example:
        >>> model = RealNVP(**RealNVP.tiny())
        >>> model.sample(2, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        num_scales: int = 3,
        hidden_channels: int = 64,
        num_blocks: int = 4,
        alpha: float = 0.05,
        lr: float = 1e-3,
        l2_coefficient: float = 5e-5,
        warmup_iterations: int = 200,
        coupling_network: Literal["authors", "plain"] = "authors",
        flow_batch_norm: bool = True,
        ordered_squeeze: bool = True,
    ) -> None:
        super().__init__(image_shape, lr=lr, weight_decay=0.0, warmup_iterations=warmup_iterations)
        self.save_hyperparameters()
        if l2_coefficient < 0:
            raise InvalidValue(f"model option l2_coefficient={l2_coefficient!r} is invalid: must be >= 0")
        self.l2_coefficient = l2_coefficient
        check_at_least_one(num_scales=num_scales, hidden_channels=hidden_channels, num_blocks=num_blocks)
        if not 0 <= alpha < 0.5:
            raise InvalidValue(f"model option alpha={alpha!r} is invalid: must be in [0, 0.5)")
        check_squeezable(self.image_shape, num_scales - 1, "RealNVP", "num_scales")
        self.preprocess = LogitTransform(alpha)
        if coupling_network not in ("authors", "plain"):
            raise InvalidValue(f"model option coupling_network={coupling_network!r} is invalid: must be authors or plain")
        self.flow = RealNVPFlow(self.image_shape, num_scales, hidden_channels, num_blocks, coupling_network,
                                flow_batch_norm, ordered_squeeze)

    # Hyperparameters implied by checkpoints that do not record them (written before the option).
    checkpoint_defaults = {"coupling_network": "plain", "flow_batch_norm": False, "ordered_squeeze": False}

    def weight_scale_l2(self) -> Tensor:
        """``sum(v^2)`` over the parameters the authors regularize: every weight-normalization
        magnitude ``g`` and every checkerboard coupling's ``tanh`` scale (their "magnitude" and
        "rescaling_scale" variables; the plain network's channel-wise scales too);
        convolution directions, biases and BatchNorm shifts are not penalized."""
        return sum((p.pow(2).sum() for p in self.regularized_parameters()), torch.zeros((), device=self.device))

    def regularized_parameters(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for module in self.modules():
            if isinstance(module, AffineCoupling) or (isinstance(module, AuthorsAffineCoupling) and module.scale_regularized):
                params.append(module.scale)
            if isinstance(module, NormalizedConv2d) and module.magnitude is not None:
                params.append(module.magnitude)
            if parametrize.is_parametrized(module, "weight"):
                params.append(module.parametrizations.weight.original0)  # weight_norm's g
        return params

    def regularization(self) -> Optional[Tensor]:
        if self.l2_coefficient == 0:
            return None
        # The authors' loss is nats per image; ours is bits/dim = nats / (D ln 2).
        return self.l2_coefficient * self.weight_scale_l2() / (self.num_dims * math.log(2))

    def encode(self, y: Tensor) -> tuple[list[Tensor], Tensor]:
        """Dequantized images ``y`` in [0, 1) -> (latents, log|det| of the whole bijection)."""
        z, log_det_logit = self.preprocess(y)
        latents, log_det_flow = self.flow(z)
        return latents, log_det_logit + log_det_flow

    def decode(self, latents: list[Tensor]) -> Tensor:
        """Latents -> ``y`` (the inverse of `encode`)."""
        return self.preprocess.inverse(self.flow.inverse(latents))

    def log_density(self, y: Tensor) -> Tensor:
        """``log p(y)`` per example by the change of variables (Eq. 3)."""
        latents, log_det = self.encode(y)
        return sum(standard_normal_log_prob(z) for z in latents) + log_det

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        y = dequantize(batch["image"], generator)
        return flow_bits_per_dim(self.log_density(y), self.num_dims)

    def draw(self, n: int, condition: Any, generator: Optional[torch.Generator], temperature: float) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1] from ``z ~ N(0, T^2 I)``, on the 256-level grid."""
        check_condition_free(type(self).__name__, condition)
        latents = [
            temperature * torch.randn((n, *shape), generator=generator, device=self.device, dtype=self.dtype)
            for shape in self.flow.latent_shapes
        ]
        # The authors' BatchNorm samples with its running averages (their sampling graph is built
        # with train=False); batch statistics of samples would also move those averages.
        was_training = self.flow.training
        self.flow.eval()
        try:
            return quantize(self.decode(latents))
        finally:
            self.flow.train(was_training)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size RealNVP (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1)
