"""Independent-pixel baselines: the likelihood an image model must beat to have learnt structure.

Both treat every sub-pixel as an independent variable over the 256 levels of 8-bit images, fitted
by maximum likelihood on training images, and score held-out images in nats (bits/dim = nats /
(C*H*W * ln 2)), on the same discrete sample space as the VAE's ``discretized_gaussian`` decoder:

- `fit_pixel_histograms`: a categorical distribution per sub-pixel (the best any independent-pixel
  model can do on the training set), with add-alpha smoothing so unseen levels keep some mass;
  alpha is chosen on 10% of the training images held out, then the counts are refitted on all;
- `fit_pixel_discretized_gaussians`: the VAE decoder's own family, one discretized Gaussian per
  sub-pixel (mean and scale fitted by gradient ascent on the training log-likelihood), i.e. the
  VAE with its latent code cut off.

`independent_pixel_bits_per_dim` fits both and returns their test bits/dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genmodels.autoencoders.vae import discretized_gaussian_log_likelihood

__all__ = [
    "pixel_levels",
    "fit_pixel_histograms",
    "histogram_log_likelihood",
    "fit_pixel_discretized_gaussians",
    "independent_pixel_bits_per_dim",
]

_ALPHAS = (1e-3, 1e-2, 0.1, 0.5, 1.0)


def pixel_levels(images: Tensor) -> Tensor:
    """(N, C, H, W) uint8, or floats in [-1, 1] -> int64 levels 0..255 of shape (N, C*H*W)."""
    if images.dtype == torch.uint8:
        return images.flatten(1).long()
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().long().flatten(1)


def _log_histograms(levels: Tensor, alpha: float) -> Tensor:
    counts = torch.zeros(levels.shape[1], 256, dtype=torch.float64)
    counts.scatter_add_(1, levels.T.contiguous(), torch.ones(levels.T.shape, dtype=torch.float64))
    return (counts + alpha).log() - math.log(len(levels) + 256 * alpha)


def histogram_log_likelihood(log_probs: Tensor, levels: Tensor) -> Tensor:
    """log P(x) per image (N,) in nats under per-sub-pixel categoricals ``log_probs`` (D, 256)."""
    return log_probs.gather(1, levels.T.contiguous()).sum(0)


def fit_pixel_histograms(levels: Tensor, seed: int = 0) -> tuple[Tensor, float]:
    """Per-sub-pixel log-probabilities (D, 256) and the smoothing alpha chosen on held-out training images."""
    permutation = torch.randperm(len(levels), generator=torch.Generator().manual_seed(seed))
    held_out = max(1, len(levels) // 10)
    fit, check = levels[permutation[held_out:]], levels[permutation[:held_out]]
    alpha = max(_ALPHAS, key=lambda a: histogram_log_likelihood(_log_histograms(fit, a), check).mean().item())
    return _log_histograms(levels, alpha), alpha


def fit_pixel_discretized_gaussians(levels: Tensor, steps: int = 200, lr: float = 0.05) -> tuple[Tensor, Tensor]:
    """Maximum-likelihood mean and log-scale (D,) of one discretized Gaussian per sub-pixel.

    The log-likelihood is evaluated once per (sub-pixel, level) pair that occurs, weighted by its
    count (the sufficient statistics), so the cost does not grow with the number of images.
    """
    dims = levels.shape[1]
    pixel = torch.arange(dims).expand_as(levels)
    pairs, counts = torch.unique(torch.stack([pixel.flatten(), levels.flatten()]), dim=1, return_counts=True)
    which, x = pairs[0], pairs[1].float().view(1, -1) / 127.5 - 1
    weights = counts.float() / len(levels)
    data = levels.float() / 127.5 - 1
    mean = data.mean(0).clone().requires_grad_(True)
    log_scale = data.std(0).clamp_min(1e-2).log().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mean, log_scale], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        log_p = _per_element_log_likelihood(x, mean[which].view(1, -1), log_scale[which].clamp_min(-7).view(1, -1))
        loss = -(weights * log_p).sum()
        loss.backward()
        optimizer.step()
    return mean.detach(), log_scale.detach().clamp_min(-7)


def _per_element_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    # The VAE's discretized Gaussian on a (1, M) "image" of M independent elements, per element.
    return discretized_gaussian_log_likelihood(x.view(-1, 1, 1, 1), mean.view(-1, 1, 1, 1), log_scale.view(-1, 1, 1, 1))


def independent_pixel_bits_per_dim(train_images: Tensor, test_images: Tensor) -> dict[str, float]:
    """Test bits/dim of both independent-pixel models fitted on ``train_images`` (uint8 or [-1, 1])."""
    train, test = pixel_levels(train_images), pixel_levels(test_images)
    dims = test.shape[1]
    log_probs, alpha = fit_pixel_histograms(train)
    mean, log_scale = fit_pixel_discretized_gaussians(train)
    x = test.float() / 127.5 - 1
    gaussian = discretized_gaussian_log_likelihood(x, mean.expand_as(x), log_scale)
    return {
        "histogram": -histogram_log_likelihood(log_probs, test).mean().item() / (dims * math.log(2)),
        "histogram_alpha": alpha,
        "discretized_gaussian": -gaussian.mean().item() / (dims * math.log(2)),
    }
