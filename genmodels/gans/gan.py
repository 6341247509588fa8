"""GAN: Generative Adversarial Networks (Goodfellow et al. 2014, arXiv:1406.2661).

The original multilayer-perceptron GAN: a ReLU generator and a maxout discriminator with dropout,
trained by Algorithm 1 with the non-saturating generator loss of Sec. 3. Defaults follow the
paper's MNIST model (two 1200-unit ReLU layers in G; two 240-unit, 5-piece maxout layers in D with
dropout 0.5). Deviations, chosen because they are what works today and what users expect:
Gaussian rather than uniform noise (``latent_distribution`` restores the paper's choice), a tanh
output for images in [-1, 1] instead of a sigmoid for [0, 1], and Adam (lr 2e-4, beta1 0.5,
Radford et al. 2015) instead of SGD with momentum.

`LatentGAN` is the part shared by every GAN that maps noise z ~ p(z) to an image (GAN, DCGAN,
WGAN, WGAN-GP): the prior, `sample` (through the EMA generator when there is one) and `generate`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Literal, Optional

import torch
from torch import Tensor, nn

from genmodels.gans.adversarial import AdversarialModel
from genmodels.errors import InvalidValue

__all__ = ["GAN", "LatentGAN", "MLPGenerator", "MaxoutDiscriminator", "Maxout"]


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
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 1))

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer (for feature matching)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).squeeze(1)


class LatentGAN(AdversarialModel):
    """An adversarial model whose generator maps z ~ p(z) to an image.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        latent_dim: size of z.
        latent_distribution: ``normal`` (N(0, I)) or ``uniform`` (U[-1, 1]).
        **kwargs: training options of `AdversarialModel` (loss, penalty, EMA, ...).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 100,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        **kwargs: Any,
    ) -> None:
        super().__init__(image_shape, **kwargs)
        if latent_dim < 1:
            raise InvalidValue(f"latent_dim must be positive, got {latent_dim}")
        if latent_distribution not in ("normal", "uniform"):
            raise InvalidValue(f"latent_distribution must be 'normal' or 'uniform', got {latent_distribution!r}")
        self.latent_dim, self.latent_distribution = latent_dim, latent_distribution
        self.fixed_latents: Optional[Tensor] = None  # set only inside `sample_from`

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """z ~ p(z), shape (n, latent_dim) (inside `sample_from`: the latents it was given)."""
        if self.fixed_latents is not None:
            if n != self.fixed_latents.shape[0]:
                raise RuntimeError(f"{type(self).__name__} asked for {n} latents while {self.fixed_latents.shape[0]} were given")
            return self.fixed_latents
        shape = (n, self.latent_dim)
        if self.latent_distribution == "uniform":
            return torch.rand(shape, generator=generator, device=self.device) * 2 - 1
        return torch.randn(shape, generator=generator, device=self.device)

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        if condition is not None:
            raise InvalidValue(f"{type(self).__name__} is unconditional; condition must be None")
        return self.sampling_generator(self.sample_latent(n, generator))

    def sample_from(self, z: Tensor, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """The images `sample` draws when its latents are ``z`` (n, latent_dim); ``generator`` draws
        everything else `sample` draws (classes, captions, conditioning-augmentation noise).

        One code path for every subclass: `sample` runs with `sample_latent` returning ``z``.
        """
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InvalidValue(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        with self._latents_fixed_to(z.to(self.device)):
            return self.sample(z.shape[0], condition=condition, generator=generator)

    @contextmanager
    def _latents_fixed_to(self, z: Tensor) -> Iterator[None]:
        previous, self.fixed_latents = self.fixed_latents, z
        try:
            yield
        finally:
            self.fixed_latents = previous

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        return self.generator(self.sample_latent(batch["image"].shape[0], generator))


class GAN(LatentGAN):
    """The MLP GAN of Goodfellow et al. (2014).

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule by the CLI.
        latent_dim: size of z.
        latent_distribution: ``normal`` or ``uniform`` (U[-1, 1], as in the paper).
        generator_hidden: widths of G's ReLU layers.
        discriminator_hidden: widths of D's maxout layers.
        maxout_pieces: linear pieces per maxout unit.
        dropout: dropout before each of D's layers.
        **kwargs: training options of `AdversarialModel` (``loss`` defaults to the non-saturating
            loss of Sec. 3; ``lr_g``, ``lr_d``, ``betas``, ``n_critic``, ``ema_decay``, ...).

    Example:
        >>> model = GAN(**GAN.tiny())
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
        **kwargs: Any,
    ) -> None:
        super().__init__(image_shape, latent_dim, latent_distribution, **kwargs)
        self.save_hyperparameters()
        if maxout_pieces < 1:
            raise InvalidValue(f"maxout_pieces must be positive, got {maxout_pieces}")
        if not 0.0 <= dropout < 1.0:
            raise InvalidValue(f"dropout must be in [0, 1), got {dropout}")
        self.build(
            MLPGenerator(latent_dim, self.image_shape, tuple(generator_hidden)),
            MaxoutDiscriminator(self.image_shape, tuple(discriminator_hidden), maxout_pieces, dropout),
        )

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size GAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,))
