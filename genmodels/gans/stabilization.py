"""GAN stabilization techniques that any adversarial model can switch on from its config.

- spectral normalization of D's weights: Miyato et al. 2018, arXiv:1802.05957;
- an exponential moving average of G's weights, used for sampling and evaluation: Karras et al.
  2018, arXiv:1710.10196 (Sec. A.1), Yazıcı et al. 2019, arXiv:1806.04498;
- instance noise, annealed to zero: Sønderby et al. 2017, arXiv:1610.04490; Arjovsky & Bottou
  2017, arXiv:1701.04862;
- per-iteration learning-rate schedules (warm-up, linear or cosine decay), sized in model
  iterations so a G/D pair with ``n_critic`` > 1 follows one timeline.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from genmodels.compat import lerp_all_, official_eval_sigma_, spectral_norm_vectors

__all__ = ["apply_spectral_norm", "make_ema", "update_ema", "lr_factor", "instance_noise_std", "LRSchedule"]

LRSchedule = Literal["constant", "linear", "cosine"]


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalize every convolution and linear layer of ``module`` (one power iteration)."""
    for child in module.modules():
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not _has_spectral_norm(child):
            nn.utils.parametrizations.spectral_norm(child)
    return module


def _has_spectral_norm(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight")


def make_ema(generator: nn.Module) -> nn.Module:
    """A frozen copy of ``generator`` to hold the moving average (never given to an optimizer)."""
    ema = copy.deepcopy(generator)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, decay: float, buffers: str = "copy") -> None:
    """theta_ema <- decay * theta_ema + (1 - decay) * theta.

    Buffers (BN statistics, spectral-norm vectors) are copied (``copy``), or averaged with the same
    decay (``interpolate``: ajbrock's and StudioGAN's BigGAN EMA, which runs over the whole state
    dict); integer buffers (BN's batch counter) are always copied.

    A spectrally normalized layer's sigma is then that of the averaged weight, as ajbrock's
    ``layers.SN`` computes it in eval mode (one power step from the stored u). PyTorch's eval mode
    would read sigma = u^T W v from vectors made for other weights: an averaged u and v shrink
    sigma, and BigGAN's digits EMA sampled noise (fid_lenet 409.9 where the live G scored 35.1).
    """
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in generator.parameters()]
    lerp_all_(ema_params, params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), generator.buffers()):
        if buffers == "interpolate" and b.is_floating_point():
            b_ema.lerp_(b, 1.0 - decay)
        else:
            b_ema.copy_(b)
    for layer in ema.modules():
        spectral = _spectral_norm_of(layer)
        if spectral is not None:
            official_eval_sigma_(spectral, layer.parametrizations.weight.original, spectral_norm_vectors(spectral)[0])


def _spectral_norm_of(layer: nn.Module):
    """The spectral-norm parametrization of ``layer``'s weight, or None."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    return next((p for p in layer.parametrizations.weight if hasattr(p, "_u") and hasattr(p, "_v")), None)


def ema_decay_at(iteration: int, decay: float, start: int) -> float:
    """Copy the weights until ``start``, then ramp the decay up as (1 + t) / (10 + t) caps it.

    The ramp keeps early averages from being dominated by the random initialization.
    """
    if iteration < start:
        return 0.0
    t = iteration - start
    return min(decay, (1.0 + t) / (10.0 + t))


def lr_factor(
    iteration: int, schedule: LRSchedule, warmup: int = 0, decay_start: int = 0, decay_end: int = 0, every: int = 1
) -> float:
    """Multiplier of the base learning rate at ``iteration``.

    Linear warm-up over ``warmup`` iterations, then constant until ``decay_start``, then a linear
    or cosine decay reaching 0 at ``decay_end`` (CycleGAN's "constant, then linearly to zero").
    With ``every`` = k the decay is read at the start of each block of k iterations, so the rate
    is piecewise constant (a per-epoch scheduler in iteration units).
    """
    if warmup > 0 and iteration < warmup:
        return (iteration + 1) / warmup
    iteration = iteration // every * every
    if schedule == "constant" or iteration < decay_start or decay_end <= decay_start:
        return 1.0
    progress = min(1.0, (iteration - decay_start) / (decay_end - decay_start))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def instance_noise_std(iteration: int, initial_std: float, anneal_iterations: int) -> float:
    """Standard deviation of the instance noise, linearly annealed to 0 (constant if not annealed)."""
    if initial_std <= 0:
        return 0.0
    if anneal_iterations <= 0:
        return initial_std
    return initial_std * max(0.0, 1.0 - iteration / anneal_iterations)
