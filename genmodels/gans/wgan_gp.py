"""WGAN-GP: Improved Training of Wasserstein GANs (Gulrajani et al. 2017, arXiv:1704.00028).

The WGAN critic objective with the Lipschitz constraint enforced softly, by penalizing the
critic's gradient norm on random interpolates x_hat = eps x + (1 - eps) G(z) (Eq. 3, Algorithm 1):
lambda = 10, n_critic = 5. No BatchNorm in the critic: the penalty is per sample and BatchNorm
couples the samples of a batch (Sec. 4, "No critic batch normalization"); every adversarial model
refuses that combination at construction.

The default networks are the authors' (igul222/improved_wgan_training, gan_mnist.py and
gan_cifar.py), `GulrajaniGenerator` and `GulrajaniCritic`:

- G: z (128) -> linear to 4 x 4 x 4*DIM -> ReLU -> three 5x5 stride-2 transposed convolutions
  (4*DIM -> 2*DIM -> DIM -> C) with ReLU, tanh output; on 28x28 the 8x8 map is cropped to 7x7.
  BatchNorm after the linear layer and the first two transposed convolutions in gan_cifar.py,
  none in gan_mnist.py's WGAN-GP mode (``generator_norm``);
- critic: three 5x5 stride-2 convolutions (C -> DIM -> 2*DIM -> 4*DIM), LeakyReLU(0.2), no
  normalization, then a linear layer to one value;
- the authors' tflib initialization: convolutions uniform with std sqrt(4 / (fan_in + fan_out))
  (fan_out divided by stride^2 for convolutions, fan_in for transposed ones), linear layers
  Glorot-uniform, biases zero;
- Adam lr 1e-4, betas (0.5, 0.9) (the code; the paper's Algorithm 1 lists beta1 = 0).

``architecture: dcgan`` keeps the DCGAN-style networks of `genmodels.gans.dcgan` with a
layer-normalized critic, the paper's suggested drop-in for BatchNorm. The penalty is computed in
float32 with autocast off, so it is the same under 16-mixed/bf16-mixed.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn

from genmodels.gans.dcgan import DCGANDiscriminator, DCGANGenerator, check_dcgan_shape
from genmodels.gans.gan import LatentGAN
from genmodels.errors import InvalidValue

__all__ = ["WGANGP", "GulrajaniGenerator", "GulrajaniCritic", "tflib_conv_std"]

_KERNEL, _STRIDE = 5, 2


def tflib_conv_std(in_channels: int, out_channels: int, transposed: bool) -> float:
    """Std of the authors' uniform convolution init (tflib Conv2D / Deconv2D, ``he_init=True``).

    fan_in = C_in k^2 and fan_out = C_out k^2, the side that is strided divided by stride^2
    (fan_out of a strided convolution, fan_in of a transposed one); std = sqrt(4 / (fan_in + fan_out)).
    """
    fan_in, fan_out = in_channels * _KERNEL**2, out_channels * _KERNEL**2
    if transposed:
        fan_in /= _STRIDE**2
    else:
        fan_out /= _STRIDE**2
    return math.sqrt(4.0 / (fan_in + fan_out))


def _uniform_std_(weight: Tensor, std: float) -> None:
    bound = std * math.sqrt(3.0)  # U(-a, a) has std a / sqrt(3)
    nn.init.uniform_(weight, -bound, bound)


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """5x5 stride-2 convolution; padding 2 gives TensorFlow's 'SAME' output size ceil(H / 2)."""
    conv = nn.Conv2d(in_channels, out_channels, _KERNEL, _STRIDE, padding=2)
    _uniform_std_(conv.weight, tflib_conv_std(in_channels, out_channels, transposed=False))
    nn.init.zeros_(conv.bias)
    return conv


def _deconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """5x5 stride-2 transposed convolution doubling H and W (tflib Deconv2D, 'SAME')."""
    deconv = nn.ConvTranspose2d(in_channels, out_channels, _KERNEL, _STRIDE, padding=2, output_padding=1)
    _uniform_std_(deconv.weight, tflib_conv_std(in_channels, out_channels, transposed=True))
    nn.init.zeros_(deconv.bias)
    return deconv


def _linear(in_features: int, out_features: int) -> nn.Linear:
    """tflib Linear's default: Glorot-uniform weights, zero bias."""
    linear = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def _feature_sizes(size: int) -> list[int]:
    """Spatial sizes after each stride-2 'SAME' step: [size, ceil(size/2), ceil(size/4), ceil(size/8)]."""
    sizes = [size]
    for _ in range(3):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


class GulrajaniGenerator(nn.Module):
    """The authors' WGAN-GP generator (gan_mnist.py / gan_cifar.py ``Generator``).

    ``norm="batch"``: BatchNorm after the input linear layer and the first two transposed
    convolutions (gan_cifar.py); ``"none"``: gan_mnist.py in WGAN-GP mode. After each transposed
    convolution the map is cropped to the critic's size at that depth (8 -> 7 on 28x28 MNIST).
    """

    def __init__(
        self, latent_dim: int, image_shape: tuple[int, int, int], dim: int = 64, norm: Literal["batch", "none"] = "batch"
    ) -> None:
        super().__init__()
        channels, size, _ = image_shape
        self.sizes = _feature_sizes(size)[::-1]  # e.g. 28: [4, 7, 14, 28]
        self.dim = dim
        batch = norm == "batch"
        start = self.sizes[0]
        self.input = nn.Sequential(
            _linear(latent_dim, start * start * 4 * dim), nn.BatchNorm1d(start * start * 4 * dim) if batch else nn.Identity(), nn.ReLU()
        )
        widths = [4 * dim, 2 * dim, dim]
        self.blocks = nn.ModuleList(
            nn.Sequential(_deconv(widths[k], widths[k + 1]), nn.BatchNorm2d(widths[k + 1]) if batch else nn.Identity(), nn.ReLU())
            for k in range(2)
        )
        self.output = _deconv(dim, channels)

    def forward(self, z: Tensor) -> Tensor:
        x = self.input(z).view(z.shape[0], 4 * self.dim, self.sizes[0], self.sizes[0])
        for block, size in zip(self.blocks, self.sizes[1:]):
            x = block(x)[:, :, :size, :size]  # the authors crop the top-left corner
        return torch.tanh(self.output(x)[:, :, : self.sizes[-1], : self.sizes[-1]])


class GulrajaniCritic(nn.Module):
    """The authors' WGAN-GP critic (``Discriminator`` of gan_mnist.py / gan_cifar.py).

    Three 5x5 stride-2 convolutions with LeakyReLU(0.2) and no normalization, then a linear layer
    to one value per image. ``norm="layer"`` adds a per-sample layer norm after the second and
    third convolutions (where the authors' WGAN mode had BatchNorm), the paper's suggested drop-in.
    """

    def __init__(self, image_shape: tuple[int, int, int], dim: int = 64, norm: Literal["none", "layer"] = "none") -> None:
        super().__init__()
        channels, size, _ = image_shape
        widths = [channels, dim, 2 * dim, 4 * dim]
        layers: list[nn.Module] = []
        for k in range(3):
            layers.append(_conv(widths[k], widths[k + 1]))
            if k > 0 and norm == "layer":
                layers.append(nn.GroupNorm(1, widths[k + 1]))
            layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)
        final = _feature_sizes(size)[-1]
        self.head = _linear(final * final * 4 * dim, 1)

    def features(self, x: Tensor) -> Tensor:
        """The last convolutional feature map (for feature matching)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).flatten(1)).flatten()


class WGANGP(LatentGAN):
    """WGAN with gradient penalty (Algorithm 1) on the authors' networks by default.

    Args:
        image_shape: ``(C, H, W)``, square, linked from the datamodule (28 and 32 are the
            authors' sizes; any H >= 8 works for ``gulrajani``).
        latent_dim: size of z (128 in the authors' code).
        latent_distribution: ``normal`` (the authors') or ``uniform``.
        architecture: ``gulrajani`` (the authors' networks, see the module docstring) or
            ``dcgan`` (`DCGANGenerator` with a `DCGANDiscriminator` critic).
        feature_maps: DIM, the critic's first width (64 in gan_mnist.py, 128 in gan_cifar.py).
        generator_norm: ``batch`` (gan_cifar.py) or ``none`` (gan_mnist.py); ``gulrajani`` only
            (the DCGAN generator always has BatchNorm).
        discriminator_norm: ``none`` (the authors') or ``layer``; ``batch`` is refused.
        loss: ``wasserstein``.
        penalty: ``gp`` on interpolates.
        penalty_weight: lambda = 10.
        n_critic: 5.
        lr_g, lr_d: 1e-4.
        betas: (0.5, 0.9) as in the authors' code.
        **kwargs: other training options of `AdversarialModel`.

    Example:
        >>> model = WGANGP(**WGANGP.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 128,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        architecture: Literal["gulrajani", "dcgan"] = "gulrajani",
        feature_maps: int = 64,
        generator_norm: Literal["batch", "none"] = "batch",
        discriminator_norm: Literal["none", "layer"] = "none",
        loss: str = "wasserstein",
        penalty: Optional[Literal["gp", "r1", "r2"]] = "gp",
        penalty_weight: float = 10.0,
        n_critic: int = 5,
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        **kwargs: Any,
    ) -> None:
        _check_wgan_gp_options(image_shape, architecture, feature_maps, generator_norm, discriminator_norm)
        super().__init__(
            image_shape, latent_dim, latent_distribution, loss=loss, penalty=penalty, penalty_weight=penalty_weight,
            n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, **kwargs,
        )
        self.save_hyperparameters()
        if architecture == "gulrajani":
            generator: nn.Module = GulrajaniGenerator(latent_dim, self.image_shape, feature_maps, generator_norm)
            critic: nn.Module = GulrajaniCritic(self.image_shape, feature_maps, discriminator_norm)  # type: ignore[arg-type]
        else:
            generator = DCGANGenerator(latent_dim, self.image_shape, feature_maps)
            critic = DCGANDiscriminator(self.image_shape, feature_maps, discriminator_norm)
        self.build(generator, critic)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size WGANGP (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)


def _check_wgan_gp_options(
    image_shape: tuple[int, int, int], architecture: str, feature_maps: int, generator_norm: str, discriminator_norm: str
) -> None:
    """Fail before building anything, naming the option."""
    if architecture not in ("gulrajani", "dcgan"):
        raise InvalidValue(f"model option architecture={architecture!r} is invalid: must be 'gulrajani' or 'dcgan'")
    if generator_norm not in ("batch", "none"):
        raise InvalidValue(f"model option generator_norm={generator_norm!r} is invalid: must be 'batch' or 'none'")
    if discriminator_norm not in ("none", "layer"):
        raise InvalidValue(
            f"model option discriminator_norm={discriminator_norm!r} is invalid: WGAN-GP's critic must not use BatchNorm "
            "(the gradient penalty is per sample); use 'none' (the authors') or 'layer'"
        )
    if architecture == "dcgan":
        check_dcgan_shape(image_shape, feature_maps)
        return
    if image_shape[1] != image_shape[2] or image_shape[1] < 8:
        raise InvalidValue(f"WGAN-GP's networks need square images of at least 8x8, got image_shape {tuple(image_shape)}")
    if feature_maps < 1:
        raise InvalidValue(f"feature_maps must be positive, got {feature_maps}")
