"""Shared test helpers for the likelihood models: perturbed weights and brute-force Jacobians."""

import torch
from torch import nn


def perturb_(model: nn.Module, std: float, seed: int = 0) -> nn.Module:
    """Add N(0, std^2) noise to every parameter, so zero-initialized layers are not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def brute_force_log_det(encode, x: torch.Tensor) -> torch.Tensor:
    """``log|det d encode(x) / dx|`` from the full autograd Jacobian of one example ``x`` (1, C, H, W)."""

    def flat(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([z.flatten() for z in encode(v.view_as(x))])

    jacobian = torch.autograd.functional.jacobian(flat, x.flatten())
    sign, log_abs_det = torch.linalg.slogdet(jacobian)
    assert sign != 0
    return log_abs_det
