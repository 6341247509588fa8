"""WGAN-GP: Improved Training of Wasserstein GANs (Gulrajani et al. 2017, arXiv:1704.00028).

The WGAN critic objective with the Lipschitz constraint enforced softly, by penalizing the
critic's gradient norm on random interpolates x_hat = eps x + (1 - eps) G(z) (Eq. 3, Algorithm 1):
lambda = 10, n_critic = 5, Adam with lr 1e-4 and betas (0, 0.9). No BatchNorm in the critic, since
the penalty is per sample and BatchNorm couples the samples of a batch; the paper recommends layer
normalization as the drop-in (Sec. 4, "No critic batch normalization"), which is the default here.
The penalty is computed in float32 with autocast off, so it is the same under 16-mixed/bf16-mixed.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from genmodels.gans.dcgan import DCGAN

__all__ = ["WGANGP"]


class WGANGP(DCGAN):
    """WGAN with gradient penalty on DCGAN-style networks (Algorithm 1 defaults).

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        latent_dim, latent_distribution, feature_maps: see `DCGAN`.
        discriminator_norm: ``layer`` (default) or ``none``; ``batch`` is refused.
        loss: ``wasserstein``.
        penalty: ``gp`` on interpolates.
        penalty_weight: lambda = 10.
        n_critic: 5.
        lr_g, lr_d: 1e-4.
        betas: (0, 0.9).
        **kwargs: other training options of `AdversarialModel`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 128,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        feature_maps: int = 64,
        discriminator_norm: Literal["layer", "none"] = "layer",
        loss: str = "wasserstein",
        penalty: Optional[Literal["gp", "r1", "r2"]] = "gp",
        penalty_weight: float = 10.0,
        n_critic: int = 5,
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        **kwargs: Any,
    ) -> None:
        if discriminator_norm == "batch":
            raise ValueError(
                "WGAN-GP's critic must not use BatchNorm (the gradient penalty is per sample); "
                "set discriminator_norm to 'layer' or 'none'"
            )
        super().__init__(
            image_shape, latent_dim, latent_distribution, feature_maps, discriminator_norm, loss=loss, penalty=penalty,
            penalty_weight=penalty_weight, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, **kwargs,
        )
