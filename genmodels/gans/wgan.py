"""WGAN: Wasserstein GAN (Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875).

The critic f estimates the Wasserstein-1 distance through the Kantorovich-Rubinstein dual,
max_{||f||_L <= 1} E[f(x)] - E[f(G(z))] (Eq. 3), with the Lipschitz constraint enforced by clipping
its weights to [-c, c] after every update. Algorithm 1: RMSprop with lr 5e-5, c = 0.01,
n_critic = 5 critic updates (each on a fresh real batch) per generator update. The networks are
the DCGAN ones with the sigmoid removed (the paper's main experiments); BatchNorm in the critic is
kept as in the paper.

Not implemented: the schedule of 100 critic iterations for the first 25 generator iterations and
every 500th (set ``n_critic`` by hand if you want it).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from genmodels.gans.dcgan import DCGAN

__all__ = ["WGAN"]


class WGAN(DCGAN):
    """Wasserstein GAN with weight clipping on DCGAN networks (Algorithm 1 defaults).

    Args:
        image_shape, latent_dim, latent_distribution, feature_maps, discriminator_norm: see `DCGAN`.
        loss: ``wasserstein`` (the critic's dual objective).
        optimizer: RMSprop (the paper found momentum-based optimizers unstable here).
        lr_g, lr_d: 5e-5.
        n_critic: 5.
        weight_clip: c = 0.01.
        **kwargs: other training options of `AdversarialModel`.
    """

    def __init__(
        self,
        loss: str = "wasserstein",
        optimizer: Literal["adam", "rmsprop"] = "rmsprop",
        lr_g: float = 5e-5,
        lr_d: float = 5e-5,
        n_critic: int = 5,
        weight_clip: Optional[float] = 0.01,
        **kwargs: Any,
    ) -> None:
        """Algorithm 1's training options; ``kwargs``: DCGAN's networks and `AdversarialModel`'s other options."""
        super().__init__(loss=loss, optimizer=optimizer, lr_g=lr_g, lr_d=lr_d, n_critic=n_critic, weight_clip=weight_clip, **kwargs)
