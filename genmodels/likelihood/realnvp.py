"""RealNVP: density estimation with real-valued non-volume preserving transformations.

Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", arXiv:1605.08803.

A bijection ``f`` from dequantized images to Gaussian latents built from affine coupling layers
(Eq. 7-9): half of the input, chosen by a binary mask ``b``, passes unchanged and parametrizes
a scale ``exp(s)`` and translation ``t`` of the other half, so ``f^-1`` costs one pass and the
Jacobian is triangular with ``log|det| = sum (1 - b) * s`` (Eq. 6). The density follows from the
change of variables (Eq. 3), ``log p(y) = log N(f(y); 0, I) + log|det df/dy|``.

Implemented:

- affine coupling with checkerboard and channel-wise masks (Sec. 3.4, Fig. 3), ``s`` bounded by
  ``tanh`` with a learned per-channel scale, ``s`` and ``t`` from weight-normalized ResNets whose
  last layer starts at zero (so every coupling starts as the identity);
- the multi-scale architecture (Sec. 3.6): per scale three checkerboard couplings, a squeeze,
  three channel-wise couplings, then half of the variables are factored out (Eq. 14-16); the last
  scale is four checkerboard couplings; the factored-out variables get the N(0, I) prior;
- the logit pre-processing of Sec. 4.1, in its symmetric form ``logit(a + (1 - 2a) y)``, and its
  log-determinant; uniform dequantization and bits/dim as in `genmodels.likelihood.common`;
- sampling ``z ~ N(0, T^2 I)`` with temperature ``T``.

- the authors' L2 regularization (tensorflow/models research/real_nvp,
  ``l2_coeff * sum(v^2)`` over the weight-normalization magnitudes and the couplings' ``tanh``
  scales, coefficient 5e-5; "L2 regularization on the weight scale parameters", Sec. 4.1) and
  nothing else: the authors add it to the loss in nats per image, so here it is divided by
  ``D ln 2`` to keep its weight relative to the bits/dim loss.

Not implemented: batch normalization as a flow layer (Sec. 3.7; it makes the density depend on
the batch while training), the paper's ResNet depth and width (set by ``hidden_channels`` and
``num_blocks``).
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
from genmodels.errors import InvalidValue

__all__ = ["RealNVP", "RealNVPFlow", "AffineCoupling", "LogitTransform", "checkerboard_mask"]

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


# ---------------------------------------------------------------------------------------------
# Flow layers: forward(x) -> (y, log|det J|) and inverse(y) -> x


class AffineCoupling(nn.Module):
    """Affine coupling layer with a checkerboard or channel-wise mask (Eq. 7-9).

    ``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))``; the checkerboard network also sees
    the mask ``b`` itself as an input channel, so it knows which positions it conditions on.
    ``parity`` picks the half that is transformed; alternating it lets every variable change.
    """

    def __init__(
        self,
        channels: int,
        mask: Literal["checkerboard", "channel"],
        parity: int,
        hidden_channels: int,
        num_blocks: int,
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

    def _scale_shift(self, conditioner: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(conditioner)
        return self.scale * torch.tanh(raw_s), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mask == "checkerboard":
            b = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device).to(x.dtype)
            s, t = self._scale_shift(torch.cat([x * b, b.expand(x.shape[0], -1, -1, -1)], dim=1))
            s, t = s * (1 - b), t * (1 - b)  # Eq. 9: the masked half passes unchanged
            return x * torch.exp(s) + t, s.flatten(1).sum(1)
        kept, changed = self._split(x)
        s, t = self._scale_shift(kept)
        return self._join(kept, changed * torch.exp(s) + t), s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        if self.mask == "checkerboard":
            b = checkerboard_mask(y.shape[2], y.shape[3], self.parity, y.device).to(y.dtype)
            s, t = self._scale_shift(torch.cat([y * b, b.expand(y.shape[0], -1, -1, -1)], dim=1))
            s, t = s * (1 - b), t * (1 - b)
            return (y - t) * torch.exp(-s)
        kept, changed = self._split(y)
        s, t = self._scale_shift(kept)
        return self._join(kept, (changed - t) * torch.exp(-s))

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first, second = x.chunk(2, dim=1)
        return (first, second) if self.parity == 0 else (second, first)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([kept, changed] if self.parity == 0 else [changed, kept], dim=1)


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


class RealNVPFlow(nn.Module):
    """Multi-scale RealNVP bijection ``x`` (B, C, H, W) -> latents, one per scale (Eq. 14-16).

    Scales ``1 .. L-1``: 3 checkerboard couplings, squeeze, 3 channel-wise couplings, factor out
    half of the channels. Scale ``L``: 4 checkerboard couplings. ``latent_shapes`` lists the
    shape of every factored-out latent, the last one being the final scale's output.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_scales: int, hidden_channels: int, num_blocks: int) -> None:
        super().__init__()
        channels, height, width = image_shape

        def couplings(c: int, mask: Literal["checkerboard", "channel"], n: int) -> nn.ModuleList:
            return nn.ModuleList(AffineCoupling(c, mask, k % 2, hidden_channels, num_blocks) for k in range(n))

        self.checkerboard = nn.ModuleList()
        self.channelwise = nn.ModuleList()
        self.latent_shapes: list[tuple[int, int, int]] = []
        for _ in range(num_scales - 1):
            self.checkerboard.append(couplings(channels, "checkerboard", 3))
            self.channelwise.append(couplings(4 * channels, "channel", 3))
            channels, height, width = 2 * channels, height // 2, width // 2
            self.latent_shapes.append((channels, height, width))
        self.final = couplings(channels, "checkerboard", 4)
        self.latent_shapes.append((channels, height, width))

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """``x`` -> (latents, log|det df/dx| per example)."""
        log_det = x.new_zeros(x.shape[0])
        latents = []
        for checkerboard, channelwise in zip(self.checkerboard, self.channelwise):
            x, log_det = _run(checkerboard, x, log_det)
            x, log_det = _run(channelwise, squeeze(x), log_det)
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
        self.flow = RealNVPFlow(self.image_shape, num_scales, hidden_channels, num_blocks)

    def weight_scale_l2(self) -> Tensor:
        """``sum(v^2)`` over the parameters the authors regularize: every weight-normalization
        magnitude ``g`` and every coupling's ``tanh`` scale (their "magnitude" and
        "rescaling_scale" variables); convolution directions and biases are not penalized."""
        return sum((p.pow(2).sum() for p in self.regularized_parameters()), torch.zeros((), device=self.device))

    def regularized_parameters(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for module in self.modules():
            if isinstance(module, AffineCoupling):
                params.append(module.scale)
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
        return quantize(self.decode(latents))

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size RealNVP (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 8, 8), num_scales=2, hidden_channels=4, num_blocks=1)
