"""Glow: generative flow with invertible 1x1 convolutions.

Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions",
arXiv:1807.03039.

A multi-scale flow (Fig. 2b) of ``L`` levels; each level squeezes, applies ``K`` steps of flow
(Fig. 2a, Table 1) and, except the last, splits off half of its channels:

- **actnorm** (Sec. 3.1): a per-channel affine map whose bias and log-scale are initialized from
  the first training batch so its outputs have zero mean and unit variance per channel;
- **invertible 1x1 convolution** (Sec. 3.2): a learned channel permutation ``W`` with
  ``log|det| = H * W * log|det W|``, optionally in the LU parametrization of Eq. 10-11 where
  ``log|det W| = sum(log|s|)`` is free;
- **affine coupling** (Sec. 3.3): ``y_a = s * x_a + t`` with ``(log s, t) = NN(x_b)``, the last
  convolution of ``NN`` zero-initialized so each step starts as the identity; ``s`` is
  ``sigmoid(h + 2)`` as in the authors' code (bounded, starting near 1). Additive coupling
  (``s = 1``) is the option ``coupling: additive``.

The split latents get a Gaussian prior whose mean and log-std are predicted from the kept half by
a zero-initialized convolution (the authors' ``split2d``); the top latent has a learned
per-channel mean and log-std. Data are uniformly dequantized to ``y = (x + u) / 256`` and
centred (``y - 1/2``, unit Jacobian); bits/dim as in `genmodels.likelihood.common`. Sampling with
temperature ``T`` draws every latent from ``N(mu, (T sigma)^2)`` (Sec. 5, Fig. 8).

Distributed data-dependent init: each actnorm reduces its first-batch statistics (sums of ``x``
and ``x^2`` and the count) across all ranks with ``all_reduce`` before setting its parameters,
so every rank initializes from the same global batch and the ranks agree. The ``initialized``
flag is a buffer, saved in checkpoints, so a resumed run never re-initializes.

Optimization as in the authors' code (openai/glow optim.py, train.py defaults): ``optimizer:
adamax`` is their Adamax variant (`GlowAdamax`) and ``polyak_iterations`` T keeps a Polyak
(exponential moving) average of the weights with decay ``beta2 = 1 - 1/T``, the same beta2 as
Adamax's second moment; the authors use T = one epoch of iterations (``polyak_epochs`` 1). The
average starts from the weights after the data-dependent init, is saved in checkpoints
(``flow_polyak``), and is what evaluation and sampling use (``polyak_evaluation``; the authors'
train.py has its ``polyak_swap`` calls commented out, so their logged test numbers used the raw
weights: ``polyak_evaluation: false`` reproduces that).

Not implemented: the reduced bit depth (``n_bits < 8``) of the paper's CelebA-HQ runs, the
class-conditional prior, and the reversal/shuffle permutation baselines of Sec. 5.1.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.gans.stabilization import make_ema, update_ema
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

__all__ = ["Glow", "GlowFlow", "GlowAdamax", "ActNorm", "InvertibleConv1x1", "GlowCoupling", "FlowStep"]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """``log N(z; mean, exp(log_std)^2)`` summed per example (B,)."""
    log_prob = -0.5 * (_LOG_2PI + 2 * log_std + (z - mean).pow(2) * torch.exp(-2 * log_std))
    return log_prob.flatten(1).sum(1)


def gaussian_sample(mean: Tensor, log_std: Tensor, temperature: float, generator: Optional[torch.Generator]) -> Tensor:
    """``mean + T * std * eps`` with ``eps ~ N(0, I)`` from ``generator``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + temperature * torch.exp(log_std) * eps


# ---------------------------------------------------------------------------------------------
# Steps of flow: forward(x) -> (y, log|det J|) and inverse(y) -> x


class ActNorm(nn.Module):
    """``y = (x + bias) * exp(logscale_factor * log_scale)`` per channel, data-initialized (Sec. 3.1, Table 1).

    On the first forward pass in training mode the parameters are set so that the batch's output
    has zero mean and unit variance per channel. Statistics are all-reduced across ranks when
    ``torch.distributed`` is initialized, so every rank gets the same parameters.

    The stored parameter is the log-scale divided by ``logscale_factor`` (3, the authors'
    ``actnorm_scale(logscale_factor=3.)`` in openai/glow tfops.py): the function is the same, but
    every optimizer step moves the log-scale 3x as far as it moves the stored value (Adamax steps
    are scale-free in the gradient). ``logscale_factor=1`` is the plain parametrization.
    """

    def __init__(self, channels: int, eps: float = 1e-6, logscale_factor: float = 3.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps
        self.logscale_factor = logscale_factor
        # A buffer, so the state survives checkpoint/resume; uint8 for every collective backend.
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set bias and log-scale from ``x`` (B, C, H, W), pooled over every rank's batch."""
        stats = torch.stack([x.sum((0, 2, 3)), x.pow(2).sum((0, 2, 3))]).double()
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device, dtype=torch.float64)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats)
            dist.all_reduce(count)
        mean = stats[0] / count
        std = (stats[1] / count - mean.pow(2)).clamp_min(0).sqrt()
        self.bias.copy_((-mean).view_as(self.bias))
        self.log_scale.copy_((-torch.log(std + self.eps) / self.logscale_factor).view_as(self.log_scale))
        self.initialized.fill_(1)

    def logs(self) -> Tensor:
        """The per-channel log-scale the map applies (the stored parameter times the factor)."""
        return self.log_scale * self.logscale_factor

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self.initialized:
            self.initialize(x)
        logs = self.logs()
        y = (x + self.bias) * torch.exp(logs)
        log_det = x.shape[2] * x.shape[3] * logs.sum()
        return y, log_det.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.logs()) - self.bias


class InvertibleConv1x1(nn.Module):
    """A 1x1 convolution with an invertible ``C x C`` weight (Sec. 3.2), optionally LU (Eq. 10-11).

    ``W`` starts as a random rotation (``log|det W| = 0``). In the LU form ``W = P L (U + diag(s))``
    with ``P`` fixed, ``L`` unit lower triangular and ``U`` strictly upper triangular, so
    ``log|det W| = sum log|s|`` costs O(C) instead of O(C^3).
    """

    def __init__(self, channels: int, lu: bool = True) -> None:
        super().__init__()
        self.lu = lu
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        if not lu:
            self.weight = nn.Parameter(rotation)
            return
        permutation, lower, upper = torch.linalg.lu(rotation)
        s = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight_matrix(self) -> Tensor:
        """The ``C x C`` matrix ``W``."""
        if not self.lu:
            return self.weight
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.t() + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def log_abs_det(self) -> Tensor:
        """``log|det W|``."""
        return self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight)[1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = F.conv2d(x, self.weight_matrix()[:, :, None, None])
        log_det = x.shape[2] * x.shape[3] * self.log_abs_det()
        return y, log_det.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        # Inverted in float64: the round trip f^-1(f(x)) stays exact to float32 precision.
        weight_inv = torch.linalg.inv(self.weight_matrix().double()).to(y.dtype)
        return F.conv2d(y, weight_inv[:, :, None, None])


class ZeroConv2d(nn.Module):
    """3x3 convolution starting at zero, with a per-channel log-scale factor (the authors' ``conv2d_zeros``)."""

    def __init__(self, in_channels: int, out_channels: int, log_scale_factor: float = 3.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.log_scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.log_scale_factor = log_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * torch.exp(self.log_scale * self.log_scale_factor)


class CouplingNN(nn.Module):
    """``NN()`` of Sec. 3.3 / Sec. 5: conv3x3-actnorm-ReLU, conv1x1-actnorm-ReLU, zero conv3x3."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=False)
        self.norm1 = ActNorm(hidden_channels)
        self.conv2 = nn.Conv2d(hidden_channels, hidden_channels, 1, bias=False)
        self.norm2 = ActNorm(hidden_channels)
        self.out = ZeroConv2d(hidden_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.norm1(self.conv1(x))[0])
        h = F.relu(self.norm2(self.conv2(h))[0])
        return self.out(h)


class GlowCoupling(nn.Module):
    """Affine (or additive) coupling of Table 1: ``x_a, x_b = split(x)``, ``y_a = s * x_a + t``."""

    def __init__(self, channels: int, hidden_channels: int, affine: bool = True) -> None:
        super().__init__()
        self.affine = affine
        half = channels // 2
        changed = channels - half
        self.nn = CouplingNN(half, 2 * changed if affine else changed, hidden_channels)
        self.half = half

    def _log_scale_shift(self, x_b: Tensor) -> tuple[Optional[Tensor], Tensor]:
        h = self.nn(x_b)
        if not self.affine:
            return None, h
        # s = sigmoid(h + 2): s(0) ~ 0.88, bounded above by 1, so no step can blow values up.
        return F.logsigmoid(h[:, 0::2] + 2.0), h[:, 1::2]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_b, x_a = x[:, : self.half], x[:, self.half :]
        log_s, t = self._log_scale_shift(x_b)
        if log_s is None:
            return torch.cat([x_b, x_a + t], dim=1), x.new_zeros(x.shape[0])
        y_a = torch.exp(log_s) * x_a + t
        return torch.cat([x_b, y_a], dim=1), log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        y_b, y_a = y[:, : self.half], y[:, self.half :]
        log_s, t = self._log_scale_shift(y_b)
        x_a = y_a - t if log_s is None else (y_a - t) * torch.exp(-log_s)
        return torch.cat([y_b, x_a], dim=1)


class FlowStep(nn.Module):
    """One step of flow (Fig. 2a): actnorm, invertible 1x1 convolution, coupling."""

    def __init__(self, channels: int, hidden_channels: int, lu: bool, affine: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [ActNorm(channels), InvertibleConv1x1(channels, lu), GlowCoupling(channels, hidden_channels, affine)]
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return x, log_det

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


# ---------------------------------------------------------------------------------------------
# The multi-scale architecture (Fig. 2b)


class GlowFlow(nn.Module):
    """``L`` levels of squeeze, ``K`` steps of flow and split; latents with learned priors.

    `forward` maps ``x`` (B, C, H, W) to the latents of every level (the split-off halves, then
    the top), ``log|det|`` and ``log p(latents)``; `inverse` maps latents back and draws any
    latent given as ``None`` from its prior at temperature ``T``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_levels: int,
        steps_per_level: int,
        hidden_channels: int,
        lu: bool = True,
        affine: bool = True,
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.levels = nn.ModuleList()
        self.split_priors = nn.ModuleList()
        self.latent_shapes: list[tuple[int, int, int]] = []
        for level in range(num_levels):
            channels, height, width = 4 * channels, height // 2, width // 2
            steps = (FlowStep(channels, hidden_channels, lu, affine) for _ in range(steps_per_level))
            self.levels.append(nn.ModuleList(steps))
            if level < num_levels - 1:
                kept = channels // 2
                self.split_priors.append(ZeroConv2d(kept, 2 * (channels - kept)))
                self.latent_shapes.append((channels - kept, height, width))
                channels = kept
        self.latent_shapes.append((channels, height, width))
        # Learned top prior: per-channel mean and log-std, starting at N(0, I).
        self.top_prior = nn.Parameter(torch.zeros(1, 2 * channels, 1, 1))

    def _split_prior(self, level: int, kept: Tensor) -> tuple[Tensor, Tensor]:
        h = self.split_priors[level](kept)
        return h[:, 0::2], h[:, 1::2]

    def _top_prior(self, n: int) -> tuple[Tensor, Tensor]:
        mean, log_std = self.top_prior.chunk(2, dim=1)
        shape = (n, *self.latent_shapes[-1])
        return mean.expand(shape), log_std.expand(shape)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """``x`` -> (latents, log|det df/dx|, log p(latents)), the last two per example."""
        log_det = x.new_zeros(x.shape[0])
        log_prior = x.new_zeros(x.shape[0])
        latents = []
        for level, steps in enumerate(self.levels):
            x = squeeze(x)
            for step in steps:
                x, step_log_det = step(x)
                log_det = log_det + step_log_det
            if level < len(self.split_priors):
                half = x.shape[1] // 2
                x, z = x[:, :half], x[:, half:]
                log_prior = log_prior + gaussian_log_prob(z, *self._split_prior(level, x))
                latents.append(z)
        log_prior = log_prior + gaussian_log_prob(x, *self._top_prior(x.shape[0]))
        return latents + [x], log_det, log_prior

    def inverse(
        self,
        latents: list[Optional[Tensor]],
        temperature: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """Latents -> ``x``; a ``None`` latent is drawn from its prior at ``temperature``."""
        x = latents[-1]
        if x is None:
            raise InvalidValue("the top latent must be given; use sample_top() to draw it")
        for level in reversed(range(len(self.levels))):
            if level < len(self.split_priors):
                z = latents[level]
                if z is None:
                    z = gaussian_sample(*self._split_prior(level, x), temperature, generator)
                x = torch.cat([x, z], dim=1)
            for step in reversed(self.levels[level]):
                x = step.inverse(x)
            x = unsqueeze(x)
        return x

    def sample_top(self, n: int, temperature: float = 1.0, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw the top latent (n, C_top, H_top, W_top) from its prior at ``temperature``."""
        return gaussian_sample(*self._top_prior(n), temperature, generator)


# ---------------------------------------------------------------------------------------------


class GlowAdamax(torch.optim.Optimizer):
    """The authors' Adamax (openai/glow optim.py ``adamax``), per parameter w with gradient g:

        m <- beta1 m + (1 - beta1) g
        u <- max(beta2 u, |g|)
        w <- w - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (u + eps)

    It differs from ``torch.optim.Adamax`` by the ``sqrt(1 - beta2^t)`` factor (with beta2 close to
    1 it ramps the first steps up, like Adam's bias correction) and by adding ``eps`` outside the
    max. ``beta2 = 1 - 1/T`` for a Polyak horizon of T iterations (`Glow`).
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["u"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                torch.maximum(state["u"].mul_(beta2), p.grad.abs(), out=state["u"])
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.addcdiv_(state["m"], state["u"] + group["eps"], value=-step_size)
        return loss


def _check_epoch_options(train_images: Optional[int], polyak_epochs: Optional[float], warmup_epochs: Optional[float],
                         polyak_iterations: Optional[int], logscale_factor: float) -> None:
    """Epoch-counted options need N, exclude their iteration-counted twins, and are positive."""
    if train_images is not None and train_images < 1:
        raise InvalidValue(f"model option train_images={train_images!r} is invalid: must be >= 1")
    for key, value in (("polyak_epochs", polyak_epochs), ("warmup_epochs", warmup_epochs)):
        if value is not None and (value <= 0 or train_images is None):
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be > 0 and needs train_images")
    if polyak_epochs is not None and polyak_iterations is not None:
        raise InvalidValue("model options polyak_epochs and polyak_iterations exclude each other: give one")
    if logscale_factor <= 0:
        raise InvalidValue(f"model option actnorm_logscale_factor={logscale_factor!r} is invalid: must be > 0")


class Glow(LikelihoodModel):
    """Glow trained by maximum likelihood on uniformly dequantized, centred images.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule; H and W must be divisible by
            ``2 ** num_levels``.
        num_levels: ``L``, levels of the multi-scale architecture (each starts with a squeeze).
        steps_per_level: ``K``, steps of flow per level.
        hidden_channels: width of the coupling networks (512 in the paper).
        lu: LU-decomposed 1x1 convolutions (Eq. 10-11).
        coupling: ``affine`` or ``additive``.
        lr: learning rate (1e-3 in the paper and the authors' code).
        weight_decay: L2 penalty (Adam only; the authors' default is none).
        warmup_iterations: linear learning-rate warm-up (the authors': 10 epochs).
        optimizer: ``adam`` (torch Adam, beta2 0.999) or ``adamax`` (`GlowAdamax`, the authors'
            default; beta2 = 1 - 1/``polyak_iterations``, or 0.999 without averaging).
        polyak_iterations: T, the horizon of the Polyak average of the weights (decay 1 - 1/T);
            the authors use one epoch, ceil(train images / batch); null: no averaging.
        polyak_evaluation: evaluate and sample with the averaged weights (when averaging).
        train_images: N, training images per epoch; with it, ``polyak_epochs`` and
            ``warmup_epochs`` are counted in epochs of the **global** batch, as the authors' code
            does under ``mpiexec -n 8``: global batch = loader batch x ``accumulate_grad_batches``
            x devices, ``train_its = ceil(N / global batch)``.
        polyak_epochs: the Polyak horizon (and Adamax's beta2 = 1 - 1/(train_its x polyak_epochs))
            in epochs; needs ``train_images``; replaces ``polyak_iterations``.
        warmup_epochs: the authors' warm-up, ``lr x min(1, images processed / (N x warmup_epochs))``
            (0 on the first step); needs ``train_images``; replaces ``warmup_iterations``.
        actnorm_logscale_factor: the factor of every actnorm's stored log-scale (3, the authors').

    Example:
        >>> model = Glow(**Glow.tiny())
        >>> model.sample(2, generator=torch.Generator().manual_seed(0), temperature=0.7).shape
        torch.Size([2, 1, 8, 8])
    """

    # Checkpoints written before actnorm_logscale_factor existed stored the plain log-scale.
    checkpoint_defaults = {"actnorm_logscale_factor": 1.0}

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        num_levels: int = 3,
        steps_per_level: int = 8,
        hidden_channels: int = 128,
        lu: bool = True,
        coupling: Literal["affine", "additive"] = "affine",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_iterations: int = 200,
        optimizer: Literal["adam", "adamax"] = "adam",
        polyak_iterations: Optional[int] = None,
        polyak_evaluation: bool = True,
        train_images: Optional[int] = None,
        polyak_epochs: Optional[float] = None,
        warmup_epochs: Optional[float] = None,
        actnorm_logscale_factor: float = 3.0,
    ) -> None:
        super().__init__(image_shape, lr=lr, weight_decay=weight_decay, warmup_iterations=warmup_iterations)
        self.save_hyperparameters()
        check_at_least_one(num_levels=num_levels, steps_per_level=steps_per_level, hidden_channels=hidden_channels)
        if coupling not in ("affine", "additive"):
            raise InvalidValue(f"model option coupling={coupling!r} is invalid: must be affine or additive")
        if optimizer not in ("adam", "adamax"):
            raise InvalidValue(f"model option optimizer={optimizer!r} is invalid: must be adam or adamax")
        if polyak_iterations is not None and polyak_iterations < 1:
            raise InvalidValue(f"model option polyak_iterations={polyak_iterations!r} is invalid: must be >= 1 or null")
        _check_epoch_options(train_images, polyak_epochs, warmup_epochs, polyak_iterations, actnorm_logscale_factor)
        check_squeezable(self.image_shape, num_levels, "Glow", "num_levels")
        self.flow = GlowFlow(self.image_shape, num_levels, steps_per_level, hidden_channels, lu, coupling == "affine")
        for module in self.flow.modules():
            if isinstance(module, ActNorm):
                module.logscale_factor = actnorm_logscale_factor
        self.optimizer_name, self.polyak_evaluation = optimizer, polyak_evaluation
        self.train_images, self.polyak_epochs, self.warmup_epochs = train_images, polyak_epochs, warmup_epochs
        # The global batch is known once the trainer runs (loader batch x accumulation x devices).
        self.global_batch: Optional[int] = None
        self.polyak_decay = 1.0 - 1.0 / polyak_iterations if polyak_iterations is not None else None
        averaging = polyak_iterations is not None or polyak_epochs is not None
        self.flow_polyak: Optional[nn.Module] = make_ema(self.flow) if averaging else None

    # -- optimization: the authors' Adamax and Polyak averaging -----------------------------------
    def make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer_name == "adam":
            return super().make_optimizer(params)
        beta2 = self.polyak_decay if self.polyak_decay is not None else 0.999
        return GlowAdamax(params, lr=self.lr, betas=(0.9, beta2))

    def train_its(self) -> int:
        """Optimizer steps per epoch of the global batch (the authors' ``get_its``)."""
        assert self.train_images is not None and self.global_batch is not None
        return math.ceil(self.train_images / self.global_batch)

    def warmup_factor(self, step: int) -> float:
        """The authors' warm-up: ``min(1, step x global batch / (N x warmup_epochs))``, 0 at step 0."""
        if step == 0:
            return 0.0
        assert self.train_images is not None and self.warmup_epochs is not None and self.global_batch is not None
        return min(1.0, step * self.global_batch / (self.train_images * self.warmup_epochs))

    def configure_optimizers(self) -> Any:
        if self.warmup_epochs is None:
            return super().configure_optimizers()
        optimizer = self.make_optimizer([p for p in self.parameters() if p.requires_grad])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.warmup_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if self.train_images is None or self.global_batch is not None:
            return
        # First batch of this fit (or resume): the global batch fixes train_its, hence beta2 and
        # the Polyak decay (1 - 1/(train_its x polyak_epochs)), as `mpiexec -n 8` x 64 does.
        trainer = self.trainer
        self.global_batch = batch["image"].shape[0] * trainer.accumulate_grad_batches * trainer.world_size
        if self.polyak_epochs is not None:
            self.polyak_decay = 1.0 - 1.0 / (self.train_its() * self.polyak_epochs)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    if "betas" in group and isinstance(optimizer, GlowAdamax):
                        group["betas"] = (group["betas"][0], self.polyak_decay)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.flow_polyak is not None and self.iteration == 0:
            # The average starts from the weights as initialized, which for actnorm means after
            # the first batch's data-dependent init (the authors' shadow variables start from the
            # variables' initialized values); this runs after the forward, before the first step.
            update_ema(self.flow_polyak, self.flow, 0.0)
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.flow_polyak is not None:
            update_ema(self.flow_polyak, self.flow, self.polyak_decay)

    @property
    def evaluation_flow(self) -> GlowFlow:
        """The flow that evaluation and sampling use: the Polyak average when kept and enabled."""
        if self.flow_polyak is not None and self.polyak_evaluation and not self.training:
            return self.flow_polyak  # type: ignore[return-value]
        return self.flow

    def log_density(self, y: Tensor) -> Tensor:
        """``log p(y)`` per example for ``y`` in [0, 1)^D; the centring ``y - 1/2`` has unit Jacobian."""
        _, log_det, log_prior = self.evaluation_flow(y - 0.5)
        return log_prior + log_det

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        y = dequantize(batch["image"], generator)
        return flow_bits_per_dim(self.log_density(y), self.num_dims)

    def draw(self, n: int, condition: Any, generator: Optional[torch.Generator], temperature: float) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1]; every latent from ``N(mu, (T sigma)^2)``."""
        check_condition_free(type(self).__name__, condition)
        # The coupling networks run forward while inverting: in eval mode, so sampling before the
        # first training batch can never trigger actnorm's data-dependent init on samples.
        was_training = self.training
        self.eval()
        try:
            flow = self.evaluation_flow
            top = flow.sample_top(n, temperature, generator)
            latents: list[Optional[Tensor]] = [None] * (len(flow.latent_shapes) - 1) + [top]
            return quantize(flow.inverse(latents, temperature, generator) + 0.5)
        finally:
            self.train(was_training)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size Glow (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 8, 8), num_levels=2, steps_per_level=1, hidden_channels=4)
