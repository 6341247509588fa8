"""The independent-pixel baseline: every sub-pixel its own 256-way categorical distribution.

``P(x) = prod_i Cat(x_i; softmax(theta_i))`` with one free logit vector per position and channel
and no dependence between positions. Its maximum-likelihood solution is the per-position
histogram of the training set, so its bits/dim is the floor any model with structure must beat
(the entropy of the per-pixel marginals); 8 bits/dim, the uniform distribution, is where it starts.

Not a paper's model; it is the "independent pixels" reference of the likelihood literature
(e.g. the ``p(x_i)`` factorization PixelRNN, arXiv:1601.06759 Sec. 2, improves on).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from genmodels.likelihood.common import (
    NUM_LEVELS,
    LikelihoodModel,
    check_condition_free,
    from_pixels,
    nats_to_bits_per_dim,
    sample_categorical,
    to_pixels,
)

__all__ = ["IndependentPixels"]


class IndependentPixels(LikelihoodModel):
    """One categorical distribution over 256 values per sub-pixel, trained by maximum likelihood.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        lr: Adam learning rate (the logits are free parameters, so a large rate converges fast).
        weight_decay: L2 penalty on the logits (a mild prior towards uniform).
        warmup_iterations: linear learning-rate warm-up.

    Example:
        >>> model = IndependentPixels(**IndependentPixels.tiny())
        >>> float(model.bits_per_dim({"image": torch.zeros(2, 1, 4, 4)}).mean())  # uniform at init
        8.0
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        lr: float = 0.05,
        weight_decay: float = 0.0,
        warmup_iterations: int = 0,
    ) -> None:
        super().__init__(image_shape, lr=lr, weight_decay=weight_decay, warmup_iterations=warmup_iterations)
        self.save_hyperparameters()
        # theta: (256, C*H*W); zeros are the uniform distribution, 8 bits/dim.
        self.logits = nn.Parameter(torch.zeros(NUM_LEVELS, self.num_dims))

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """``-sum_i log2 Cat(x_i; theta_i) / D`` per image (B,); exact, no dequantization."""
        pixels = to_pixels(batch["image"]).flatten(1)  # (B, D)
        log_probs = torch.log_softmax(self.logits, dim=0)  # (256, D)
        positions = torch.arange(self.num_dims, device=pixels.device)
        nll = -log_probs[pixels, positions].sum(1)
        return nats_to_bits_per_dim(nll, self.num_dims)

    def draw(self, n: int, condition: Any, generator: Optional[torch.Generator], temperature: float) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1]; each sub-pixel from ``softmax(theta_i / T)``."""
        check_condition_free(type(self).__name__, condition)
        logits = self.logits.detach().t().expand(n, -1, -1)  # (n, D, 256)
        pixels = sample_categorical(logits, temperature, generator)
        return from_pixels(pixels).view(n, *self.image_shape)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size IndependentPixels (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 4, 4))
