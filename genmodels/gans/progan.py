"""ProGAN: Progressive Growing of GANs (Karras et al. 2018, arXiv:1710.10196).

G and D start at 4x4 and grow by one resolution at a time (Sec. 2, Fig. 1-2). Each new
resolution is first *faded in*: the new block's output is blended with the upsampled (in G) or
downsampled (in D) output of the previous resolution with a weight alpha rising linearly from
0 to 1 over ``fade_images`` images, then trained at full weight (*stabilized*) for
``stabilize_images`` images (800k + 800k in the paper, App. A.1). Also implemented: the equalized
learning rate (Sec. 4.1, `genmodels.nn.equalized`), pixelwise feature normalization in G
(Sec. 4.2), minibatch standard deviation in D (Sec. 3), the WGAN-GP loss with the drift term
eps_drift * E[D(x)^2], eps_drift = 0.001 (App. A.1), Adam (lr 0.001, betas (0, 0.99)) and an EMA
of G's weights (decay 0.999) for sampling.

**Growth is a component.** The schedule, its images-seen clock, real images at the current
resolution and the official per-phase hyperparameters (per-resolution minibatch and learning
rates, the Adam reset when a fade starts and ends) live in a `genmodels.gans.growth.Growth` that
`ProGAN` holds as ``self.growth`` and calls from the loop's update hooks; StyleGAN (v1) composes
the same object, StyleGAN2 does not grow. ``sample`` returns images at the final resolution
(nearest-neighbour upsampled while the networks are still growing). Also from the official code
(tkarras/progressive_growing_of_gans): the first dense layer's gain sqrt(2)/4 (``G_paper``) and a
constant EMA decay per update (``G_smoothing`` 0.999).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.errors import InvalidValue
from genmodels.gans.clock import ImageClock
from genmodels.gans.gan import LatentGAN
from genmodels.gans.growth import Growth, GrowthSchedule, Phase, fade, num_levels, to_resolution, upsample2
from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear
from genmodels.nn.minibatch_std import MinibatchStdDev
from genmodels.nn.normalization import PixelNorm
from genmodels.nn.upfirdn2d import filter2d, fir_filter

__all__ = ["GrowthSchedule", "Phase", "ProGAN", "ProGANGenerator", "ProGANDiscriminator", "channels_at", "num_levels"]


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: ``min(channel_base / resolution, channel_max)`` (App. A.1 table)."""
    return max(1, min(channel_base // resolution, channel_max))


# ---------------------------------------------------------------------------------------------
# Networks (Table 2 of the paper; channels from `channels_at`)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class _GConv(nn.Module):
    """G's conv layer: equalized 3x3 conv, leaky ReLU, pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv, self.norm = EqualizedConv2d(in_channels, out_channels, 3), PixelNorm()

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(_lrelu(self.conv(x)))


class _GInput(nn.Module):
    """4x4 block: normalized z -> dense to 4x4 maps (the paper's 4x4 "conv" on a 1x1 input) -> 3x3 conv.

    The dense layer's He gain is sqrt(2) / 4, as in the official ``G_paper`` (networks.py): its 16
    outputs per channel are one 4x4 "transposed conv" whose fan-in the official code counts as
    latent_dim * 16, i.e. the usual sqrt(2) / sqrt(fan_in) scaled by 1 / sqrt(16).
    """

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.normalize, self.channels = PixelNorm(), channels
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=math.sqrt(2) / 4)
        self.conv = _GConv(channels, channels)

    def forward(self, z: Tensor) -> Tensor:
        x = self.dense(self.normalize(z)).view(z.shape[0], self.channels, 4, 4)
        return self.conv(self.normalize(_lrelu(x)))


class ProGANGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, C, r, r) at the phase's resolution r (linear output)."""

    def __init__(self, latent_dim: int = 512, resolution: int = 1024, image_channels: int = 3, channel_base: int = 16384, channel_max: int = 512) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.blocks = nn.ModuleList([_GInput(latent_dim, ch[0])])
        self.blocks.extend(nn.Sequential(nn.Upsample(scale_factor=2.0), _GConv(ch[k - 1], ch[k]), _GConv(ch[k], ch[k])) for k in range(1, levels))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, image_channels, 1, gain=1.0) for c in ch)

    def forward(self, z: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        x = self.blocks[0](z)
        for block in self.blocks[1:level]:
            x = block(x)
        if level == 0:
            return self.to_rgb[0](x)
        current = self.to_rgb[level](self.blocks[level](x))
        if alpha >= 1.0:
            return current
        return fade(upsample2(self.to_rgb[level - 1](x)), current, alpha)


class _DBlock(nn.Module):
    """D's block at resolution r: 3x3 conv, leaky ReLU, 3x3 conv with 2x average pooling, leaky ReLU.

    The second conv and the pooling act as one strided conv whose output gets the bias and the
    activation, as in the official ``Conv1_down`` layers (ProGAN ``D_paper`` with its default
    ``fused_scale=True``, StyleGAN ``D_basic``). ``activate_after_downscale=False`` pools the
    activated output instead (ProGAN's ``fused_scale=False`` variant). With ``blur_taps``
    (StyleGAN's D: [1, 2, 1]) a low-pass filter runs before the downsampling conv.
    """

    def __init__(
        self, in_channels: int, out_channels: int, blur_taps: Optional[Sequence[float]] = None, activate_after_downscale: bool = True
    ) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqualizedConv2d(in_channels, in_channels, 3), EqualizedConv2d(in_channels, out_channels, 3)
        self.blur = Blur(blur_taps) if blur_taps else nn.Identity()
        self.activate_after_downscale = activate_after_downscale

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.blur(_lrelu(self.conv0(x))))
        return _lrelu(F.avg_pool2d(x, 2)) if self.activate_after_downscale else F.avg_pool2d(_lrelu(x), 2)


class Blur(nn.Module):
    """Same-size FIR low-pass (StyleGAN's ``blur2d``): pads (k - 1) / 2 per side, gain 1."""

    def __init__(self, taps: Sequence[float] = (1.0, 2.0, 1.0)) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_filter(taps), persistent=False)
        k = len(taps)
        self.padding = ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)

    def forward(self, x: Tensor) -> Tensor:
        return filter2d(x, self.kernel, self.padding)


class DiscriminatorHead(nn.Module):
    """D's 4x4 end: minibatch stddev, 3x3 conv, 4x4 "conv" (dense), dense to one output."""

    def __init__(self, channels: int, mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.dense = EqualizedLinear(channels * 16, channels)
        self.out = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = _lrelu(self.conv(self.mbstd(x)))
        return self.out(_lrelu(self.dense(x.flatten(1)))).flatten()


class ProGANDiscriminator(nn.Module):
    """image (N, C, r, r) at the phase's resolution -> one critic value per image."""

    def __init__(
        self, resolution: int = 1024, image_channels: int = 3, channel_base: int = 16384, channel_max: int = 512, mbstd_group_size: int = 4,
        blur_taps: Optional[Sequence[float]] = None, activate_after_downscale: bool = True,
    ) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(image_channels, c, 1) for c in ch)
        self.blocks = nn.ModuleList([nn.Identity()])  # level 0 has no block before the head
        self.blocks.extend(_DBlock(ch[k], ch[k - 1], blur_taps, activate_after_downscale) for k in range(1, levels))
        self.head = DiscriminatorHead(ch[0], mbstd_group_size)

    def forward(self, x: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        h = _lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level](h)
            if alpha < 1.0:
                h = fade(_lrelu(self.from_rgb[level - 1](F.avg_pool2d(x, 2))), h, alpha)
        for k in range(level - 1, 0, -1):
            h = self.blocks[k](h)
        return self.head(h)


#: Why the equalized-LR families refuse feature matching (their discriminators have no features()).
NO_FEATURES = {"feature_matching": "its discriminator has no features()"}


def refuse_spectral_norm(model: Any) -> None:
    """apply_spectral_norm wraps nn.Conv2d / nn.Linear only: the equalized layers would be left as they are."""
    if model.use_spectral_norm:
        raise InvalidValue(f"spectral_norm is not supported by {type(model).__name__}: its equalized-LR layers already normalize the weight scale")


def square_levels(image_shape: Sequence[int], name: str) -> int:
    """Levels of a square power-of-2 image (0: 4x4), refusing other shapes in one line."""
    if image_shape[1] != image_shape[2]:
        raise InvalidValue(f"{name} needs square images, got image_shape {tuple(image_shape)}")
    return num_levels(image_shape[1])


class ProGAN(LatentGAN):
    """Progressive growing of GANs with the paper's networks and training setup (App. A.1).

    The growing is ``self.growth`` (`genmodels.gans.growth.Growth`), called from the loop's update
    hooks below; its phase (``self.phase``) sets the networks' level and alpha.

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2 (up to 1024 in the paper).
        latent_dim: size of z (512).
        channel_base, channel_max: feature maps at resolution r are min(channel_base / r,
            channel_max): 512 up to 32x32, then 256, 128, 64, 32, 16 at 1024x1024.
        mbstd_group_size: minibatch-stddev group size (4).
        drift: eps_drift of the drift term eps_drift * E[D(x)^2] (0.001).
        growing: grow from ``initial_resolution`` (False: train at the final resolution from the start).
        fade_images: images over which each new resolution fades in (alpha 0 -> 1; 800k).
        stabilize_images: images trained at alpha = 1 per resolution, the initial one included (800k).
        loss, penalty, penalty_weight, n_critic: WGAN-GP, lambda = 10, one D step per G step.
        lr_g, lr_d, betas: Adam, 0.001, (0, 0.99).
        ema_decay: EMA of G's weights for sampling (0.999).
        initial_resolution: resolution training starts at (4).
        minibatch_schedule: images per update at each resolution, summed over all processes (the
            official ``minibatch_dict``); resolutions not listed use the data loader's batch. An
            update at resolution r accumulates ``minibatch_schedule[r] / (batch_size * world_size)``
            micro-batches of the loader, so the loader's ``batch_size`` must divide every entry.
            Null: one loader batch per update (``accumulate_grad_batches`` applies).
        lr_schedule_by_resolution: learning rate of G and D at each resolution (the official
            ``G_lrate_dict`` = ``D_lrate_dict``); resolutions not listed use ``lr_g`` / ``lr_d``.
        reset_optimizer_on_growth: clear both Adam states when a fade starts and when it ends
            (official ``reset_opt_for_new_lod=True``).
        ema_kimg: half-life of G's EMA in thousands of images: beta = 0.5 ** (images per update /
            (1000 ema_kimg)) (official ``G_smoothing_kimg`` / ``ema_kimg``). Null: the constant
            ``ema_decay`` per update (ProGAN's ``G_smoothing``). ``ema_decay: null`` disables the EMA.
        ema_rampup: with ``ema_kimg``, cap the half-life at ``ema_rampup`` times the images seen
            (StyleGAN2-ADA's ``ema_rampup``; null: no ramp).
        **kwargs: other training options of `AdversarialModel`.

    Example:
        >>> model = ProGAN(**ProGAN.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    refused_options = NO_FEATURES

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        latent_dim: int = 512,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        drift: float = 0.001,
        growing: bool = True,
        fade_images: int = 800_000,
        stabilize_images: int = 800_000,
        loss: str = "wasserstein",
        penalty: Optional[Literal["gp", "r1", "r2"]] = "gp",
        penalty_weight: float = 10.0,
        n_critic: int = 1,
        lr_g: float = 0.001,
        lr_d: float = 0.001,
        betas: tuple[float, float] = (0.0, 0.99),
        ema_decay: Optional[float] = 0.999,
        initial_resolution: int = 4,
        minibatch_schedule: Optional[dict[int, int]] = None,
        lr_schedule_by_resolution: Optional[dict[int, float]] = None,
        reset_optimizer_on_growth: bool = True,
        ema_kimg: Optional[float] = None,
        ema_rampup: Optional[float] = None,
        **kwargs: Any,
    ) -> None:
        levels = square_levels(image_shape, type(self).__name__)
        schedule = GrowthSchedule(levels - 1, fade_images, stabilize_images, growing, num_levels(initial_resolution) - 1)
        super().__init__(
            image_shape, latent_dim, "normal", loss=loss, penalty=penalty, penalty_weight=penalty_weight,
            n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, ema_decay=ema_decay, **kwargs,
        )
        self.save_hyperparameters()
        refuse_spectral_norm(self)
        self.clock = ImageClock(self, ema_kimg, ema_rampup)
        self.growth = Growth(self, self.clock, schedule, minibatch_schedule, lr_schedule_by_resolution, reset_optimizer_on_growth)
        if drift < 0:
            raise InvalidValue(f"drift must be >= 0, got {drift}")
        self.drift = drift
        c, size, _ = self.image_shape
        self.build(
            ProGANGenerator(latent_dim, size, c, channel_base, channel_max),
            ProGANDiscriminator(size, c, channel_base, channel_max, mbstd_group_size),
        )

    # -- growth: the loop's hooks call the component ---------------------------------------------
    @property
    def phase(self) -> Phase:
        """The growth phase of the update in progress (else at the images seen so far)."""
        return self.growth.phase

    def real_images(self, images: Tensor, phase: Optional[Phase] = None) -> Tensor:
        return self.growth.real_images(images, phase)

    def add_images_seen(self, n: int) -> None:
        self.clock.advance(n)

    def critics(self) -> dict[str, Callable[..., Tensor]]:
        return {"d": self.growth.critic(self.discriminator)}

    def configure_optimizers(self) -> Any:
        return self.growth.configure_optimizers(super().configure_optimizers())

    def begin_update(self, batch: dict[str, Tensor]) -> None:
        self.growth.begin_update(batch)

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.growth.prepare_batch(batch)

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        self.growth.end_update(micro_batches, logs)

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        return self.clock.ema_beta(micro_batches, self.ema_decay)

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        phase = self.phase
        return self.generator(self.sample_latent(batch["image"].shape[0], generator), phase.level, phase.alpha)

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        if condition is not None:
            raise InvalidValue("ProGAN is unconditional; condition must be None")
        phase = self.phase
        return to_resolution(self.sampling_generator(self.sample_latent(n, generator), phase.level, phase.alpha), self.image_shape[1])

    def discriminator_term(self, outputs: dict[str, Any]) -> Tensor:
        """The critic loss (WGAN-GP's by default) plus the drift term eps_drift E[D(x)^2] (App. A.1),
        which keeps the critic's output near zero (otherwise it drifts freely)."""
        loss = super().discriminator_term(outputs)
        if self.drift > 0:
            drift = outputs["d"].real.float().pow(2).mean()
            self.report("drift", drift)
            loss = loss + self.drift * drift
        return loss

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size ProGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=8, channel_base=32, channel_max=8, fade_images=8,
                    stabilize_images=8)
