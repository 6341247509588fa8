"""GAN: Generative Adversarial Networks (Goodfellow et al. 2014, arXiv:1406.2661).

The original multilayer-perceptron GAN: a ReLU generator and a maxout discriminator with dropout,
trained by Algorithm 1 with the non-saturating generator loss of Sec. 3. Defaults follow the
paper's MNIST model (two 1200-unit ReLU layers in G; two 240-unit, 5-piece maxout layers in D with
dropout 0.5). Deviations, chosen because they are what works today and what users expect:
Gaussian rather than uniform noise (``latent_distribution`` restores the paper's choice), a tanh
output for images in [-1, 1] instead of a sigmoid for [0, 1], and Adam (lr 2e-4, beta1 0.5,
Radford et al. 2015) instead of SGD with momentum.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn

from genmodels.base import AdversarialModel
from genmodels.losses import d_loss_nonsaturating, g_loss_nonsaturating

__all__ = ["GAN", "NonSaturatingGAN", "MLPGenerator", "MaxoutDiscriminator", "Maxout"]


class MLPGenerator(nn.Module):
    """z -> ReLU hidden layers -> tanh image of ``image_shape``."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.image_shape = image_shape
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013, arXiv:1302.4389): max over ``pieces`` linear maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=2)


class MaxoutDiscriminator(nn.Module):
    """image -> maxout hidden layers with dropout -> one logit per image."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: tuple[int, ...], pieces: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for h in hidden:
            layers += [nn.Dropout(dropout), Maxout(width, h, pieces)]
            width = h
        layers += [nn.Dropout(dropout), nn.Linear(width, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class NonSaturatingGAN(AdversarialModel):
    """Algorithm 1 with the non-saturating loss, for any generator/discriminator pair.

    Shared by `GAN` (MLPs) and `DCGAN` (convolutions): the objective, the latent prior and the
    optimizers are the same; a subclass builds ``self.generator`` (z -> image) and
    ``self.discriminator`` (image -> logit) and calls ``save_hyperparameters()``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        latent_distribution: Literal["normal", "uniform"],
        lr_g: float,
        lr_d: float,
        betas: tuple[float, float],
        n_critic: int,
        grad_clip_norm: Optional[float],
    ) -> None:
        super().__init__(image_shape, n_critic=n_critic, grad_clip_norm=grad_clip_norm)
        _check_positive(latent_dim=latent_dim, lr_g=lr_g, lr_d=lr_d)
        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(f"latent_distribution must be 'normal' or 'uniform', got {latent_distribution!r}")
        self.latent_dim, self.latent_distribution = latent_dim, latent_distribution
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)

    # -- sampling -----------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """z ~ p(z), shape (n, latent_dim)."""
        shape = (n, self.latent_dim)
        if self.latent_distribution == "uniform":
            return torch.rand(shape, generator=generator, device=self.device) * 2 - 1
        return torch.randn(shape, generator=generator, device=self.device)

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        if condition is not None:
            raise ValueError(f"{type(self).__name__} is unconditional; condition must be None")
        return self.generator(self.sample_latent(n, generator))

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        return self.sample(batch["image"].shape[0], generator=generator)

    # -- Algorithm 1 ----------------------------------------------------------------------------
    def discriminator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # Ascend log D(x) + log(1 - D(G(z))): Eq. 1, the discriminator's half.
        real_logits = self.discriminator(batch["image"])
        fake_logits = self.discriminator(fake)
        logs = {"train/d_real": torch.sigmoid(real_logits).mean(), "train/d_fake": torch.sigmoid(fake_logits).mean()}
        return d_loss_nonsaturating(real_logits, fake_logits), logs

    def generator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # Maximize log D(G(z)) instead of minimizing log(1 - D(G(z))): Sec. 3.
        return g_loss_nonsaturating(self.discriminator(fake)), {}

    def discriminator_scores(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(self.discriminator(batch["image"])).mean(), torch.sigmoid(self.discriminator(fake)).mean()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas)
        return [opt_g, opt_d]  # order matters: AdversarialModel unpacks (G, D)


class GAN(NonSaturatingGAN):
    """The MLP GAN of Goodfellow et al. (2014) with the non-saturating loss.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule by the CLI.
        latent_dim: size of z.
        latent_distribution: ``normal`` (N(0, I)) or ``uniform`` (U[-1, 1], as in the paper).
        generator_hidden: widths of G's ReLU layers.
        discriminator_hidden: widths of D's maxout layers.
        maxout_pieces: linear pieces per maxout unit.
        dropout: dropout before each of D's layers.
        lr_g, lr_d: Adam learning rates of G and D.
        betas: Adam betas for both players.
        n_critic, grad_clip_norm: see `AdversarialModel`.

    Example:
        >>> model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,))
        >>> model.sample(3).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 100,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        generator_hidden: tuple[int, ...] = (1200, 1200),
        discriminator_hidden: tuple[int, ...] = (240, 240),
        maxout_pieces: int = 5,
        dropout: float = 0.5,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        n_critic: int = 1,
        grad_clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(image_shape, latent_dim, latent_distribution, lr_g, lr_d, betas, n_critic, grad_clip_norm)
        self.save_hyperparameters()
        _check_positive(maxout_pieces=maxout_pieces)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.generator = MLPGenerator(latent_dim, self.image_shape, tuple(generator_hidden))
        self.discriminator = MaxoutDiscriminator(self.image_shape, tuple(discriminator_hidden), maxout_pieces, dropout)


def _check_positive(**values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"{key} must be positive, got {value}")
