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

**Official training loop** (tkarras/progressive_growing_of_gans train.py / config.py): the
per-resolution minibatch (``minibatch_schedule`` = ``minibatch_dict``, run as accumulated loader
batches), per-resolution learning rates (``lr_schedule_by_resolution``), the Adam state reset when
a fade starts and when it ends (``reset_opt_for_new_lod``), the first dense layer's gain sqrt(2)/4
(``G_paper``) and a constant EMA decay per update (``G_smoothing`` 0.999). The phase is fixed for
a whole update, so gradient accumulation never mixes resolutions or alphas.
`ProgressiveGAN` is the growing machinery shared with StyleGAN (`genmodels.gans.stylegan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.compat import has_trainer
from genmodels.errors import UserError, InvalidValue
from genmodels.gans.gan import LatentGAN
from genmodels.nn.equalized import EqualizedConv2d, EqualizedLinear
from genmodels.nn.minibatch_std import MinibatchStdDev
from genmodels.nn.normalization import PixelNorm
from genmodels.nn.upfirdn2d import filter2d, fir_filter

__all__ = ["GrowthSchedule", "Phase", "ProgressiveGAN", "ProGAN", "ProGANGenerator", "ProGANDiscriminator", "channels_at", "num_levels"]


# ---------------------------------------------------------------------------------------------
# Growing schedule


def num_levels(resolution: int) -> int:
    """Resolutions 4, 8, ..., ``resolution``; refuses sizes that are not a power of 2 >= 4."""
    if resolution < 4 or resolution & (resolution - 1):
        raise InvalidValue(
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
    """Images per phase: the initial level is stabilized, then every higher level is faded in, then stabilized.

    Timeline (images seen): [0, S) at ``initial_level`` (0: 4x4; StyleGAN's official config starts
    at 8x8, level 1); then for each higher level a fade of F images (alpha 0 -> 1 linearly) and S
    images at alpha 1; after the last level, stable forever (the official ``training_schedule``'s
    lod). ``growing=False`` trains at the final level from the start (StyleGAN2).
    """

    final_level: int
    fade_images: int = 800_000
    stabilize_images: int = 800_000
    growing: bool = True
    initial_level: int = 0

    def __post_init__(self) -> None:
        if self.fade_images < 0 or self.stabilize_images < 0:
            raise InvalidValue(f"fade_images and stabilize_images must be >= 0, got {self.fade_images} and {self.stabilize_images}")
        if self.growing and self.final_level > 0 and self.fade_images + self.stabilize_images == 0:
            raise InvalidValue("growing needs fade_images + stabilize_images > 0 (images per phase), or set growing: false")
        if not 0 <= self.initial_level <= self.final_level:
            raise InvalidValue(f"initial_resolution must be between 4 and the image size (level {self.initial_level} of 0..{self.final_level})")

    def phase(self, images_seen: int) -> Phase:
        if not self.growing or self.final_level == self.initial_level:
            return Phase(self.final_level, 1.0)
        period = self.fade_images + self.stabilize_images
        t = images_seen - self.stabilize_images  # time since the initial level's stabilization ended
        if t < 0:
            return Phase(self.initial_level, 1.0)
        level = self.initial_level + 1 + t // period
        if level > self.final_level:
            return Phase(self.final_level, 1.0)
        into_phase = t - (level - self.initial_level - 1) * period
        alpha = 1.0 if into_phase >= self.fade_images else into_phase / self.fade_images
        return Phase(int(level), float(alpha))

    def images_until_final(self) -> int:
        """Images seen when the final resolution is fully faded in."""
        if not self.growing or self.final_level == self.initial_level:
            return 0
        levels = self.final_level - self.initial_level
        return self.stabilize_images + (levels - 1) * (self.fade_images + self.stabilize_images) + self.fade_images


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


# ---------------------------------------------------------------------------------------------
# The growing machinery (shared with StyleGAN)


class ProgressiveGAN(LatentGAN):
    """A `LatentGAN` whose networks take ``(input, level, alpha)`` and grow on a `GrowthSchedule`.

    Subclasses build networks with that signature; this class derives the phase from the
    ``images_seen`` buffer, feeds D real images at the phase's resolution, and samples at the
    final resolution. As in the official training loops, the schedule also sets, per resolution,
    the minibatch size and the learning rates, and the Adam states are reset whenever the phase
    changes between stabilizing and fading (``reset_opt_for_new_lod``).

    **One phase per update.** The phase (resolution, alpha, minibatch, learning rate) is computed
    once, at the first micro-batch of an update, and holds for all its micro-batches, so a phase
    boundary that falls inside an update never mixes resolutions or alphas.

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2; linked from the datamodule.
        latent_dim: size of z.
        growing: grow from ``initial_resolution`` (False: train at the final resolution from the start).
        fade_images: images over which each new resolution fades in (alpha 0 -> 1).
        stabilize_images: images trained at alpha = 1 per resolution (the initial one included).
        initial_resolution: resolution training starts at (4; StyleGAN's official config: 8).
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
        **kwargs: training options of `AdversarialModel`.
    """

    refused_options = {"feature_matching": "its discriminator has no features()"}

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        latent_dim: int = 512,
        growing: bool = True,
        fade_images: int = 800_000,
        stabilize_images: int = 800_000,
        initial_resolution: int = 4,
        minibatch_schedule: Optional[dict[int, int]] = None,
        lr_schedule_by_resolution: Optional[dict[int, float]] = None,
        reset_optimizer_on_growth: bool = True,
        ema_kimg: Optional[float] = None,
        ema_rampup: Optional[float] = None,
        **kwargs: Any,
    ) -> None:
        if image_shape[1] != image_shape[2]:
            raise InvalidValue(f"{type(self).__name__} needs square images, got image_shape {tuple(image_shape)}")
        schedule = GrowthSchedule(num_levels(image_shape[1]) - 1, fade_images, stabilize_images, growing, num_levels(initial_resolution) - 1)
        super().__init__(image_shape, latent_dim, "normal", **kwargs)
        if self.use_spectral_norm:
            # apply_spectral_norm wraps nn.Conv2d / nn.Linear only; the equalized layers would be left as they are.
            raise InvalidValue(f"spectral_norm is not supported by {type(self).__name__}: its equalized-LR layers already normalize the weight scale")
        _check_growth_options(minibatch_schedule, lr_schedule_by_resolution, ema_kimg, ema_rampup, self.accumulate_grad_batches, self.lr_schedule[0])
        self.schedule = schedule
        self.minibatch_schedule = {int(k): int(v) for k, v in (minibatch_schedule or {}).items()}
        self.lr_schedule_by_resolution = {int(k): float(v) for k, v in (lr_schedule_by_resolution or {}).items()}
        self.reset_optimizer_on_growth = reset_optimizer_on_growth
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        # Real images shown to D so far (all ranks): the clock of the growing schedule. The buffer
        # persists it (checkpoints, exports); the host copy is what `phase` reads, so choosing the
        # phase never waits on the GPU and works under torch.export.
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.int64))
        self._images_seen = 0
        # The stage (see `_optimizer_stage`) the Adam states were last reset for; in checkpoints.
        self.register_buffer("optimizer_stage", torch.zeros((), dtype=torch.int64))
        self._optimizer_stage = _optimizer_stage(schedule.phase(0))
        self.optimizer_stage.fill_(self._optimizer_stage)
        self._update_phase: Optional[Phase] = None
        self._update_start_images = 0
        self.register_load_state_dict_post_hook(_sync_images_seen)

    # -- the phase --------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        """The phase of the update in progress, else the schedule's phase at ``images_seen``."""
        return self._update_phase if self._update_phase is not None else self.schedule.phase(self._images_seen)

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
    def critics(self) -> dict[str, Callable[..., Tensor]]:
        """D at the update's phase (resolution and fade-in alpha)."""
        phase = self.phase
        return {"d": partial(_judge_at_phase, self.discriminator, phase.level, phase.alpha)}

    # -- per-resolution hyperparameters ---------------------------------------------------------
    def learning_rates(self, resolution: int) -> tuple[float, float]:
        """(G, D) learning rates at ``resolution`` (times c = k / (k + 1) for a separate lazy phase)."""
        lr = self.lr_schedule_by_resolution.get(resolution)
        lr_g, lr_d = (self.lr_g, self.lr_d) if lr is None else (lr, lr)
        return lr_g * self.lazy_ratio("g"), lr_d * self.lazy_ratio("d")

    def configure_optimizers(self) -> Any:
        config = super().configure_optimizers()
        optimizers, schedulers = config if isinstance(config, tuple) else (config, [])
        for optimizer, lr in zip(optimizers, self.learning_rates(self.phase.resolution)):
            _set_lr(optimizer, lr, [s for s in schedulers if s.optimizer is optimizer])
        return config

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """Official EMA: a half-life of ``ema_kimg`` thousand images, else the constant ``ema_decay``."""
        if self.ema_kimg is None:
            return float(self.ema_decay)
        world = self.trainer.world_size if has_trainer(self) else 1
        batch = world * sum(b["image"].shape[0] for b in micro_batches)
        ema_images = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_images = min(ema_images, self._update_start_images * self.ema_rampup)
        return 0.5 ** (batch / max(ema_images, 1e-8))

    def begin_update(self, batch: dict[str, Tensor]) -> None:
        """At an update's first micro-batch: fix its phase and apply that phase's hyperparameters."""
        phase = self._update_phase = self.schedule.phase(self._images_seen)
        self._update_start_images = self._images_seen
        if self.minibatch_schedule:
            self.accumulate_grad_batches = self._micro_batches_per_update(phase.resolution, batch["image"].shape[0])
        if not has_trainer(self):
            return
        optimizers = self.optimizers()
        stage = _optimizer_stage(phase)
        if self.reset_optimizer_on_growth and stage != self._optimizer_stage:
            for optimizer in optimizers:
                getattr(optimizer, "optimizer", optimizer).state.clear()  # moments and step counts
            self._optimizer_stage = stage
            self.optimizer_stage.fill_(stage)
        if self.lr_schedule_by_resolution:
            for optimizer, lr in zip(optimizers, self.learning_rates(phase.resolution)):
                _set_lr(getattr(optimizer, "optimizer", optimizer), lr, [])

    def _micro_batches_per_update(self, resolution: int, batch_size: int) -> int:
        world = self.trainer.world_size if has_trainer(self) else 1
        images = self.minibatch_schedule.get(resolution, batch_size * world)
        if images % (batch_size * world):
            raise UserError(
                f"minibatch_schedule asks for {images} images per update at {resolution}x{resolution}, not a multiple of "
                f"the loader's batch of {batch_size} x {world} process(es); set data.init_args.batch_size to a divisor of every entry"
            )
        return images // (batch_size * world)

    # -- training: the base loop on real images at the phase's resolution ---------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self._at_phase(batch)

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        """Advance the growth clock by the update's real images (all ranks) and log the phase."""
        world = self.trainer.world_size if has_trainer(self) else 1
        self.add_images_seen(sum(b["image"].shape[0] for b in micro_batches) * world)
        phase = self.phase
        logs.update({"train/resolution": float(phase.resolution), "train/alpha": phase.alpha})
        self._update_phase = None


def _judge_at_phase(discriminator: nn.Module, level: int, alpha: float, images: Tensor, condition: Any = None) -> Tensor:
    """D at a growth phase, conditioned when a condition is given (class-conditional StyleGAN2)."""
    if condition is None:
        return discriminator(images, level, alpha)
    return discriminator(images, level, alpha, condition)


def _optimizer_stage(phase: Phase) -> int:
    """Stabilizing level L -> 2L, fading level L in -> 2L - 1: the official code resets Adam when
    floor(lod) or ceil(lod) changes, i.e. when a fade starts and when it ends."""
    return 2 * phase.level - (1 if phase.alpha < 1.0 else 0)


def _set_lr(optimizer: Any, lr: float, schedulers: list[Any]) -> None:
    """Set the base learning rate of every group, keeping the factor an LR scheduler applied."""
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        group["lr"] = group["lr"] * lr / base if base else lr
        if "initial_lr" in group:
            group["initial_lr"] = lr
        for scheduler in schedulers:
            scheduler.base_lrs[i] = lr


def _check_growth_options(
    minibatch: Optional[dict[int, int]], lrs: Optional[dict[int, float]], ema_kimg: Optional[float], ema_rampup: Optional[float],
    accumulate: int, lr_schedule: str,
) -> None:
    if minibatch and any(int(v) < 1 for v in minibatch.values()):
        raise InvalidValue(f"model option minibatch_schedule={minibatch!r} is invalid: every entry must be >= 1 images")
    if minibatch and accumulate != 1:
        raise InvalidValue("model options minibatch_schedule and accumulate_grad_batches exclude each other: the schedule sets the micro-batches per update")
    if lrs and any(float(v) <= 0 for v in lrs.values()):
        raise InvalidValue(f"model option lr_schedule_by_resolution={lrs!r} is invalid: every rate must be positive")
    if lrs and lr_schedule != "constant":
        raise InvalidValue("model option lr_schedule_by_resolution needs lr_schedule: constant (the two would both set the rate)")
    if ema_kimg is not None and ema_kimg <= 0:
        raise InvalidValue(f"model option ema_kimg={ema_kimg!r} is invalid: must be positive or null")
    if ema_rampup is not None and ema_rampup <= 0:
        raise InvalidValue(f"model option ema_rampup={ema_rampup!r} is invalid: must be positive or null")


def _sync_images_seen(module: ProgressiveGAN, incompatible_keys: Any) -> None:
    """After load_state_dict (resume, apps), refresh the host copies of the growth clock.

    Checkpoints written before ``optimizer_stage`` existed load too: the stage is then the phase's.
    """
    module._images_seen = int(module.images_seen)
    missing = [k for k in incompatible_keys.missing_keys if k == "optimizer_stage" or k.endswith(".optimizer_stage")]
    for key in missing:
        incompatible_keys.missing_keys.remove(key)
    if missing:
        module.optimizer_stage.fill_(_optimizer_stage(module.schedule.phase(module._images_seen)))
    module._optimizer_stage = int(module.optimizer_stage)


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
        >>> model = ProGAN(**ProGAN.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
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
        loss: str = "wasserstein",
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
            raise InvalidValue(f"drift must be >= 0, got {drift}")
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
            raise InvalidValue("ProGAN is unconditional; condition must be None")
        phase = self.phase
        return self.to_final_resolution(self.sampling_generator(self.sample_latent(n, generator), phase.level, phase.alpha))

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
