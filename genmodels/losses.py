"""Adversarial losses as pure functions of discriminator logits.

All take raw logits (no sigmoid applied) so they are numerically stable and safe under autocast,
where ``binary_cross_entropy`` on probabilities is refused.

- Non-saturating loss: Goodfellow et al. 2014, arXiv:1406.2661, Sec. 3 ("rather than training G to
  minimize log(1 - D(G(z))) we can train G to maximize log D(G(z))").
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["d_loss_nonsaturating", "g_loss_nonsaturating"]


def d_loss_nonsaturating(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-log D(x) - log(1 - D(G(z))), averaged over the batch (Eq. 1 for D)."""
    # softplus(-l) = -log(sigmoid(l)) and softplus(l) = -log(1 - sigmoid(l)), computed stably.
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-log D(G(z)): the non-saturating generator loss."""
    return F.softplus(-fake_logits).mean()
