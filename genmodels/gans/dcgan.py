"""DCGAN: Deep Convolutional GANs (Radford, Metz & Chintala 2015, arXiv:1511.06434).

The GAN objective of Goodfellow et al. with the paper's architecture guidelines (Sec. 3):
strided and fractionally-strided (transposed) convolutions instead of pooling, BatchNorm in both
networks except G's output and D's input layers, ReLU in G with a tanh output, LeakyReLU(0.2) in
D, no fully connected hidden layers, weights from N(0, 0.02), Adam with lr 2e-4 and beta1 0.5.

The paper's 64x64 network starts from a 4x4 map with 8 * feature_maps channels and doubles the
resolution per layer; the same rule gives 32x32 (three upsamplings) and 16x16. 28x28 data
(MNIST) starts from 7x7 so images need no padding or resizing. Any size 4 * 2^k (k >= 2) or
7 * 2^k (k >= 1) works; other sizes are rejected at construction.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from genmodels.gans.gan import LatentGAN
from genmodels.errors import InvalidValue

__all__ = ["DCGAN", "DCGANGenerator", "DCGANDiscriminator", "dcgan_layout"]


def dcgan_layout(image_size: int) -> tuple[int, int]:
    """(start resolution, number of x2 up/down-samplings) for ``image_size``."""
    for start in (4, 7):
        size, doublings = start, 0
        while size < image_size:
            size, doublings = size * 2, doublings + 1
        if size == image_size and doublings >= (2 if start == 4 else 1):
            return start, doublings
    raise InvalidValue(
        f"DCGAN cannot produce image_size {image_size}: supported sizes are 4*2^k (16, 32, 64, 128, ...) "
        "and 7*2^k (14, 28, 56, ...); set data.init_args.image_size to one of them"
    )


def dcgan_init(module: nn.Module) -> None:
    """Sec. 4: all weights from a zero-centred normal with standard deviation 0.02."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (n, latent_dim) -> transposed convolutions with BatchNorm + ReLU -> tanh image."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], feature_maps: int = 64) -> None:
        super().__init__()
        channels, size, _ = image_shape
        start, doublings = dcgan_layout(size)
        width = feature_maps * 2 ** (doublings - 1)
        # Project and reshape z: a transposed conv over a 1x1 map is the paper's first layer.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, start, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image -> strided convolutions with normalization + LeakyReLU(0.2) -> one logit per image.

    ``norm`` is ``batch`` (the paper), ``layer`` (per-sample normalization over C, H, W, the
    WGAN-GP critic's drop-in for BatchNorm, which would make each critic output depend on the
    rest of the batch and invalidate the per-sample gradient penalty) or ``none``.
    """

    def __init__(
        self, image_shape: tuple[int, int, int], feature_maps: int = 64, norm: Literal["batch", "layer", "none"] = "batch"
    ) -> None:
        super().__init__()
        channels, size, _ = image_shape
        start, doublings = dcgan_layout(size)
        width = feature_maps
        # No normalization on D's input layer (Sec. 3: it caused sample oscillation and instability).
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=norm == "none"), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(doublings - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"), _norm(norm, width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, start, 1, 0, bias=False)
        self.apply(dcgan_init)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden feature map (for feature matching)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).flatten()


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # one group = layer norm over (C, H, W), per-channel affine
    if kind == "none":
        return nn.Identity()
    raise InvalidValue(f"norm must be 'batch', 'layer' or 'none', got {kind!r}")


class DCGAN(LatentGAN):
    """DCGAN: the GAN objective and training loop with the paper's convolutional networks.

    Args:
        image_shape: ``(C, H, W)``, square, H in 4*2^k or 7*2^k; linked from the datamodule.
        latent_dim: size of z (100 in the paper).
        latent_distribution: ``normal`` or ``uniform`` (the paper drew z uniformly).
        feature_maps: channels of G's last and D's first hidden layer (``ngf`` = ``ndf`` = 64).
        discriminator_norm: ``batch`` (paper), ``layer`` or ``none``.
        **kwargs: training options of `AdversarialModel` (loss, penalty, spectral_norm, lr_g,
            lr_d, betas (paper: 2e-4, beta1 0.5), ema_decay, ...).

    Example:
        >>> model = DCGAN(**DCGAN.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 100,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        feature_maps: int = 64,
        discriminator_norm: Literal["batch", "layer", "none"] = "batch",
        **kwargs: Any,
    ) -> None:
        check_dcgan_shape(image_shape, feature_maps)
        super().__init__(image_shape, latent_dim, latent_distribution, **kwargs)
        self.save_hyperparameters()
        self.build(
            DCGANGenerator(latent_dim, self.image_shape, feature_maps),
            DCGANDiscriminator(self.image_shape, feature_maps, discriminator_norm),
        )

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size DCGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)


def check_dcgan_shape(image_shape: tuple[int, int, int], feature_maps: int) -> None:
    """Fail before building anything."""
    if image_shape[1] != image_shape[2]:
        raise InvalidValue(f"DCGAN needs square images, got image_shape {tuple(image_shape)}")
    if feature_maps < 1:
        raise InvalidValue(f"feature_maps must be positive, got {feature_maps}")
    dcgan_layout(image_shape[1])
