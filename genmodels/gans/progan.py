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

**Phase from images seen.** The growth phase (resolution and alpha) is a pure function of the
number of real images shown to D, kept in the ``images_seen`` buffer (part of the state dict, so a
checkpoint resumes in the same phase with the same alpha, and an exported generator samples at
the resolution it was trained to).

**Real images at the current resolution.** The datamodule serves the final resolution; the model
box-filters (average-pools) each real batch down to the current resolution and, during a fade,
blends it with its own 2x-downsampled-then-upsampled copy by the same alpha as G, as the official
code does, so D never sees a real/fake resolution mismatch. This keeps every datamodule unaware of
growing. ``sample`` returns images at the final resolution (nearest-neighbour upsampled while the
networks are still growing).

Not implemented: the per-resolution minibatch sizes and the Adam-state reset at each new
resolution of the official code (one batch size from the config; the optimizer keeps its state).
`ProgressiveGAN` is the growing machinery shared with StyleGAN (`genmodels.gans.stylegan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.gans.gan import LatentGAN
from genmodels.gans.losses import gradient_penalty, r1_penalty
from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear
from genmodels.nn.minibatch_std import MinibatchStdDev
from genmodels.nn.normalization import PixelNorm

__all__ = ["GrowthSchedule", "Phase", "ProgressiveGAN", "ProGAN", "ProGANGenerator", "ProGANDiscriminator", "channels_at", "num_levels"]


# ---------------------------------------------------------------------------------------------
# Growing schedule


def num_levels(resolution: int) -> int:
    """Resolutions 4, 8, ..., ``resolution``; refuses sizes that are not a power of 2 >= 4."""
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(
            f"progressive/style-based GANs need a square power-of-2 image size >= 4, got {resolution}; "
            "set data.init_args.image_size to 8, 16, 32, ..., 1024"
        )
    return int(math.log2(resolution)) - 1


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: ``min(channel_base / resolution, channel_max)`` (App. A.1 table)."""
    return max(1, min(channel_base // resolution, channel_max))


@dataclass(frozen=True)
class Phase:
    """Where growing stands: level 0 is 4x4; alpha is the weight of the newest block (1: stable)."""

    level: int
    alpha: float

    @property
    def resolution(self) -> int:
        return 4 * 2**self.level


@dataclass(frozen=True)
class GrowthSchedule:
    """Images per phase: 4x4 is stabilized, then every higher level is faded in, then stabilized.

    Timeline (images seen): [0, S) 4x4; then for level k >= 1 a fade of F images (alpha 0 -> 1
    linearly) and S images at alpha 1; after the last level, stable forever. ``growing=False``
    trains at the final level from the start (StyleGAN2).
    """

    final_level: int
    fade_images: int = 800_000
    stabilize_images: int = 800_000
    growing: bool = True

    def __post_init__(self) -> None:
        if self.fade_images < 0 or self.stabilize_images < 0:
            raise ValueError(f"fade_images and stabilize_images must be >= 0, got {self.fade_images} and {self.stabilize_images}")
        if self.growing and self.final_level > 0 and self.fade_images + self.stabilize_images == 0:
            raise ValueError("growing needs fade_images + stabilize_images > 0 (images per phase), or set growing: false")

    def phase(self, images_seen: int) -> Phase:
        if not self.growing or self.final_level == 0:
            return Phase(self.final_level, 1.0)
        period = self.fade_images + self.stabilize_images
        t = images_seen - self.stabilize_images  # time since the 4x4 stabilization ended
        if t < 0:
            return Phase(0, 1.0)
        level = 1 + t // period
        if level > self.final_level:
            return Phase(self.final_level, 1.0)
        into_phase = t - (level - 1) * period
        alpha = 1.0 if into_phase >= self.fade_images else into_phase / self.fade_images
        return Phase(int(level), float(alpha))

    def images_until_final(self) -> int:
        """Images seen when the final resolution is fully faded in."""
        if not self.growing:
            return 0
        return self.stabilize_images + (self.final_level - 1) * (self.fade_images + self.stabilize_images) + self.fade_images


def downsample_to(images: Tensor, resolution: int) -> Tensor:
    """Box-filter (average-pool) square images down to ``resolution``."""
    factor = images.shape[-1] // resolution
    return images if factor == 1 else F.avg_pool2d(images, factor)


def fade(previous: Tensor, current: Tensor, alpha: float) -> Tensor:
    """The fade-in blend (1 - alpha) * previous + alpha * current (Fig. 2b)."""
    return current if alpha >= 1.0 else torch.lerp(previous, current, alpha)


def upsample2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


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
    """4x4 block: normalized z -> dense to 4x4 maps (the paper's 4x4 "conv" on a 1x1 input) -> 3x3 conv."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.normalize, self.channels = PixelNorm(), channels
        self.dense = EqualizedLinear(latent_dim, channels * 16)
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
    """D's block at resolution r: two 3x3 convs with leaky ReLU, then 2x average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqualizedConv2d(in_channels, in_channels, 3), EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(_lrelu(self.conv1(_lrelu(self.conv0(x)))), 2)


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

    def __init__(self, resolution: int = 1024, image_channels: int = 3, channel_base: int = 16384, channel_max: int = 512, mbstd_group_size: int = 4) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(image_channels, c, 1) for c in ch)
        self.blocks = nn.ModuleList([nn.Identity()])  # level 0 has no block before the head
        self.blocks.extend(_DBlock(ch[k], ch[k - 1]) for k in range(1, levels))
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


# ---------------------------------------------------------------------------------------------
# The growing machinery (shared with StyleGAN)


class ProgressiveGAN(LatentGAN):
    """A `LatentGAN` whose networks take ``(input, level, alpha)`` and grow on a `GrowthSchedule`.

    Subclasses build networks with that signature; this class derives the phase from the
    ``images_seen`` buffer, feeds D real images at the phase's resolution, and samples at the
    final resolution.

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2; linked from the datamodule.
        latent_dim: size of z.
        growing: grow from 4x4 (False: train at the final resolution from the start).
        fade_images: images over which each new resolution fades in (alpha 0 -> 1).
        stabilize_images: images trained at alpha = 1 per resolution (4x4 included).
        **kwargs: training options of `AdversarialModel`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        latent_dim: int = 512,
        growing: bool = True,
        fade_images: int = 800_000,
        stabilize_images: int = 800_000,
        **kwargs: Any,
    ) -> None:
        if image_shape[1] != image_shape[2]:
            raise ValueError(f"{type(self).__name__} needs square images, got image_shape {tuple(image_shape)}")
        schedule = GrowthSchedule(num_levels(image_shape[1]) - 1, fade_images, stabilize_images, growing)
        super().__init__(image_shape, latent_dim, "normal", **kwargs)
        if self.use_spectral_norm:
            # apply_spectral_norm wraps nn.Conv2d / nn.Linear only; the equalized layers would be left as they are.
            raise ValueError(f"spectral_norm is not supported by {type(self).__name__}: its equalized-LR layers already normalize the weight scale")
        self.schedule = schedule
        # Real images shown to D so far (all ranks): the clock of the growing schedule. The buffer
        # persists it (checkpoints, exports); the host copy is what `phase` reads, so choosing the
        # phase never waits on the GPU and works under torch.export.
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.int64))
        self._images_seen = 0
        self.register_load_state_dict_post_hook(_sync_images_seen)

    # -- the phase --------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self.schedule.phase(self._images_seen)

    def add_images_seen(self, n: int) -> None:
        self.images_seen += n
        self._images_seen += n

    def real_images(self, images: Tensor, phase: Optional[Phase] = None) -> Tensor:
        """Real images at the phase's resolution, faded like G's output during a fade-in."""
        phase = phase or self.phase
        current = downsample_to(images, phase.resolution)
        if phase.alpha >= 1.0:
            return current
        return fade(upsample2(F.avg_pool2d(current, 2)), current, phase.alpha)

    def _at_phase(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**batch, "image": self.real_images(batch["image"])}

    def to_final_resolution(self, images: Tensor) -> Tensor:
        """Nearest-neighbour upsampling of a growing network's output to the image size, in [-1, 1]."""
        size = self.image_shape[1]
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="nearest")
        return images.clamp(-1, 1)

    # -- the networks at the current phase ----------------------------------------------------
    def discriminate(self, images: Tensor, condition: Any = None) -> Tensor:
        phase = self.phase
        images = self.augment(images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.discriminator(images, phase.level, phase.alpha)

    def _penalty_value(self, real: Tensor, fake: Tensor, condition: Any = None) -> tuple[Tensor, Tensor]:
        phase = self.phase
        def critic(x: Tensor) -> Tensor:
            return self.discriminator(self.augment(x), phase.level, phase.alpha)  # through T, as in ADA
        if self.penalty == "gp":
            return gradient_penalty(critic, real, fake)
        return r1_penalty(critic, real if self.penalty == "r1" else fake)

    # -- training: the base loop on real images at the phase's resolution ---------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        super().training_step(self._at_phase(batch), batch_idx)
        world = self.trainer.world_size if self._trainer is not None else 1
        self.add_images_seen(batch["image"].shape[0] * world)
        if self._logging_step:
            phase = self.phase
            self.log_dict({"train/resolution": float(phase.resolution), "train/alpha": phase.alpha}, on_step=True, on_epoch=False)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        super().validation_step(self._at_phase(batch), batch_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        super().test_step(self._at_phase(batch), batch_idx)


def _sync_images_seen(module: ProgressiveGAN, incompatible_keys: Any) -> None:
    """After load_state_dict (resume, apps), refresh the host copy of the growth clock."""
    module._images_seen = int(module.images_seen)


class ProGAN(ProgressiveGAN):
    """Progressive growing of GANs with the paper's networks and training setup (App. A.1).

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2 (up to 1024 in the paper).
        latent_dim: size of z (512).
        channel_base, channel_max: feature maps at resolution r are min(channel_base / r,
            channel_max): 512 up to 32x32, then 256, 128, 64, 32, 16 at 1024x1024.
        mbstd_group_size: minibatch-stddev group size (4).
        drift: eps_drift of the drift term eps_drift * E[D(x)^2] (0.001).
        growing, fade_images, stabilize_images: the schedule (800k images each).
        loss, penalty, penalty_weight, n_critic: WGAN-GP, lambda = 10, one D step per G step.
        lr_g, lr_d, betas: Adam, 0.001, (0, 0.99).
        ema_decay: EMA of G's weights for sampling (0.999).
        **kwargs: other training options of `AdversarialModel`.

    Example:
        >>> model = ProGAN(image_shape=(1, 8, 8), latent_dim=8, channel_base=64, channel_max=8)
        >>> model.sample(2).shape
        torch.Size([2, 1, 8, 8])
    """

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
        loss: Literal["wasserstein", "nonsaturating", "hinge", "least_squares", "minimax"] = "wasserstein",
        penalty: Optional[Literal["gp", "r1", "r2"]] = "gp",
        penalty_weight: float = 10.0,
        n_critic: int = 1,
        lr_g: float = 0.001,
        lr_d: float = 0.001,
        betas: tuple[float, float] = (0.0, 0.99),
        ema_decay: Optional[float] = 0.999,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image_shape, latent_dim, growing, fade_images, stabilize_images, loss=loss, penalty=penalty,
            penalty_weight=penalty_weight, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, ema_decay=ema_decay, **kwargs,
        )
        self.save_hyperparameters()
        if drift < 0:
            raise ValueError(f"drift must be >= 0, got {drift}")
        self.drift = drift
        c, size, _ = self.image_shape
        self.build(
            ProGANGenerator(latent_dim, size, c, channel_base, channel_max),
            ProGANDiscriminator(size, c, channel_base, channel_max, mbstd_group_size),
        )

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        phase = self.phase
        return self.generator(self.sample_latent(batch["image"].shape[0], generator), phase.level, phase.alpha)

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        if condition is not None:
            raise ValueError("ProGAN is unconditional; condition must be None")
        phase = self.phase
        return self.to_final_resolution(self.sampling_generator(self.sample_latent(n, generator), phase.level, phase.alpha))

    def discriminator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """WGAN-GP critic loss plus the drift term (App. A.1)."""
        real = batch["image"]
        real_out, fake_out = self.discriminate(real), self.discriminate(fake)
        # E[D(G(z))] - E[D(x)] (Wasserstein critic; or the configured loss)
        loss = self.d_loss_fn(real_out, fake_out, real_target=1.0 - self.label_smoothing)
        logs = self._discriminator_stats(real_out, fake_out)
        loss = loss + self.output_regularizers(real_out, fake_out, logs)  # ADA statistic, LeCam
        # + eps_drift E[D(x)^2]: keeps the critic's output near zero (otherwise it drifts freely).
        if self.drift > 0:
            drift = real_out.float().pow(2).mean()
            loss = loss + self.drift * drift
            logs["train/drift"] = drift.detach()
        # + lambda E[(||grad D(x_hat)|| - 1)^2] on interpolates (Gulrajani et al. 2017, Eq. 3)
        if self.penalty is not None and self.iteration % self.penalty_interval == 0:
            value, grad_norm = self._penalty_value(real, fake)
            loss = loss + self._penalty_scale() * value
            logs.update({f"train/penalty_{self.penalty}": value.detach(), f"train/{self.penalty}_grad_norm": grad_norm})
        return loss, logs
