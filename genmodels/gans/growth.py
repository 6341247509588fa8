"""Progressive growing (Karras et al. 2018, arXiv:1710.10196, Sec. 2) as a component a model holds.

ProGAN and StyleGAN (v1) grow; StyleGAN2 does not. So growth is not a base class but a `Growth`
object the growing models compose (``self.growth``) and call from the hooks of the shared loop
(`genmodels.gans.adversarial`): ``begin_update`` fixes the update's phase and applies its
hyperparameters, ``prepare_batch`` brings real images to the phase's resolution, ``critics``
runs D at the phase, ``end_update`` advances the clock and logs the phase. It owns:

- **The schedule** (`GrowthSchedule`): the phase (level, fade-in alpha) as a pure function of the
  real images shown to D, read from an `ImageClock` (the ``images_seen`` buffer of the host's
  state dict), so a checkpoint resumes in the same phase with the same alpha and an exported
  generator samples at the resolution it was trained to.
- **The official per-phase hyperparameters** (tkarras/progressive_growing_of_gans train.py /
  config.py, NVlabs/stylegan train.py): the per-resolution minibatch (``minibatch_dict``, run as
  accumulated loader batches), per-resolution learning rates (``G_lrate_dict``), and the Adam
  state reset when a fade starts and when it ends (``reset_opt_for_new_lod``), whose stage is the
  host's ``optimizer_stage`` buffer.

**One phase per update.** The phase is computed once, at the first micro-batch of an update, and
holds for all its micro-batches, so a phase boundary that falls inside an update never mixes
resolutions or alphas.

**Real images at the current resolution.** The datamodule serves the final resolution; growth
box-filters each real batch down to the phase's resolution and, during a fade, blends it with its
own 2x-downsampled-then-upsampled copy by the same alpha as G (the official code), so D never sees
a real/fake resolution mismatch and no datamodule knows about growing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.compat import has_trainer
from genmodels.errors import InvalidValue, UserError
from genmodels.gans.clock import ImageClock

if TYPE_CHECKING:
    from genmodels.gans.adversarial import AdversarialModel

__all__ = ["Growth", "GrowthSchedule", "Phase", "downsample_to", "fade", "judge_at", "num_levels", "to_resolution", "upsample2"]


def num_levels(resolution: int) -> int:
    """Resolutions 4, 8, ..., ``resolution``; refuses sizes that are not a power of 2 >= 4."""
    if resolution < 4 or resolution & (resolution - 1):
        raise InvalidValue(
            f"progressive/style-based GANs need a square power-of-2 image size >= 4, got {resolution}; "
            "set data.init_args.image_size to 8, 16, 32, ..., 1024"
        )
    return int(math.log2(resolution)) - 1


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
    lod). ``growing=False`` trains at the final level from the start.
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


# ---------------------------------------------------------------------------------------------
# Images across resolutions


def downsample_to(images: Tensor, resolution: int) -> Tensor:
    """Box-filter (average-pool) square images down to ``resolution``."""
    factor = images.shape[-1] // resolution
    return images if factor == 1 else F.avg_pool2d(images, factor)


def fade(previous: Tensor, current: Tensor, alpha: float) -> Tensor:
    """The fade-in blend (1 - alpha) * previous + alpha * current (Fig. 2b)."""
    return current if alpha >= 1.0 else torch.lerp(previous, current, alpha)


def upsample2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def to_resolution(images: Tensor, size: int) -> Tensor:
    """Nearest-neighbour upsampling of a (still growing) network's output to ``size``, in [-1, 1]."""
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="nearest")
    return images.clamp(-1, 1)


def judge_at(discriminator: nn.Module, phase: Phase, images: Tensor, condition: Any = None) -> Tensor:
    """D at a phase (its networks take ``(images, level, alpha[, condition])``), conditioned when a
    condition is given (class-conditional StyleGAN2)."""
    if condition is None:
        return discriminator(images, phase.level, phase.alpha)
    return discriminator(images, phase.level, phase.alpha, condition)


# ---------------------------------------------------------------------------------------------
# The component


class Growth:
    """The growing schedule of a host model, its clock and the per-phase hyperparameters.

    The host builds networks that take ``(input, level, alpha)`` and calls this object from its
    update hooks (see the module docstring). The Adam stage the optimizers were last reset for is
    the host's ``optimizer_stage`` buffer, next to the clock's ``images_seen``.

    Args:
        host: the model that grows (its optimizers, its learning rates and the buffers).
        clock: the host's images-seen clock.
        schedule: the phases as a function of the images seen.
        minibatch_schedule: images per update at each resolution, over all processes (official
            ``minibatch_dict``); other resolutions: one loader batch per update.
        lr_schedule_by_resolution: G's and D's learning rate at each resolution (official
            ``G_lrate_dict`` = ``D_lrate_dict``); other resolutions: the host's ``lr_g`` / ``lr_d``.
        reset_optimizer_on_growth: clear both Adam states when a fade starts and when it ends.
    """

    def __init__(
        self,
        host: AdversarialModel,
        clock: ImageClock,
        schedule: GrowthSchedule,
        minibatch_schedule: Optional[dict[int, int]] = None,
        lr_schedule_by_resolution: Optional[dict[int, float]] = None,
        reset_optimizer_on_growth: bool = True,
    ) -> None:
        _check_growth_options(minibatch_schedule, lr_schedule_by_resolution, host.accumulate_grad_batches, host.lr_schedule[0])
        self.host, self.clock, self.schedule = host, clock, schedule
        self.minibatch_schedule = {int(k): int(v) for k, v in (minibatch_schedule or {}).items()}
        self.lr_schedule_by_resolution = {int(k): float(v) for k, v in (lr_schedule_by_resolution or {}).items()}
        self.reset_optimizer_on_growth = reset_optimizer_on_growth
        # The Adam stage (see `optimizer_stage`) last reset for, in checkpoints; its host copy is `stage`.
        self.stage = optimizer_stage(schedule.phase(0))
        host.register_buffer("optimizer_stage", torch.full((), self.stage, dtype=torch.int64))
        host.register_load_state_dict_post_hook(self._reread)
        self.update_phase: Optional[Phase] = None

    # -- the phase --------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        """The phase of the update in progress, else the schedule's phase at the images seen."""
        return self.update_phase if self.update_phase is not None else self.schedule.phase(self.clock.count)

    def real_images(self, images: Tensor, phase: Optional[Phase] = None) -> Tensor:
        """Real images at the phase's resolution, faded like G's output during a fade-in."""
        phase = phase or self.phase
        current = downsample_to(images, phase.resolution)
        if phase.alpha >= 1.0:
            return current
        return fade(upsample2(F.avg_pool2d(current, 2)), current, phase.alpha)

    def critic(self, discriminator: nn.Module) -> Callable[..., Tensor]:
        """D at the current phase (resolution and fade-in alpha)."""
        return partial(judge_at, discriminator, self.phase)

    # -- per-resolution hyperparameters ---------------------------------------------------------
    def learning_rates(self, resolution: int) -> tuple[float, float]:
        """(G, D) learning rates at ``resolution`` (times c = k / (k + 1) for a separate lazy phase)."""
        lr = self.lr_schedule_by_resolution.get(resolution)
        lr_g, lr_d = (self.host.lr_g, self.host.lr_d) if lr is None else (lr, lr)
        return lr_g * self.host.lazy_ratio("g"), lr_d * self.host.lazy_ratio("d")

    def configure_optimizers(self, config: Any) -> Any:
        """The host's optimizers (and schedulers) at the current phase's learning rates."""
        optimizers, schedulers = config if isinstance(config, tuple) else (config, [])
        for optimizer, lr in zip(optimizers, self.learning_rates(self.phase.resolution)):
            set_lr(optimizer, lr, [s for s in schedulers if s.optimizer is optimizer])
        return config

    def micro_batches_per_update(self, resolution: int, batch_size: int) -> int:
        """Loader batches accumulated into one update at ``resolution`` (``minibatch_schedule``)."""
        world = self.host.trainer.world_size if has_trainer(self.host) else 1
        images = self.minibatch_schedule.get(resolution, batch_size * world)
        if images % (batch_size * world):
            raise UserError(
                f"minibatch_schedule asks for {images} images per update at {resolution}x{resolution}, not a multiple of "
                f"the loader's batch of {batch_size} x {world} process(es); set data.init_args.batch_size to a divisor of every entry"
            )
        return images // (batch_size * world)

    # -- the update hooks -----------------------------------------------------------------------
    def begin_update(self, batch: dict[str, Tensor]) -> None:
        """At an update's first micro-batch: fix its phase and apply that phase's hyperparameters."""
        phase = self.update_phase = self.schedule.phase(self.clock.count)
        self.clock.begin_update()
        host = self.host
        if self.minibatch_schedule:
            host.accumulate_grad_batches = self.micro_batches_per_update(phase.resolution, batch["image"].shape[0])
        if not has_trainer(host):
            return
        optimizers = host.optimizers()
        stage = optimizer_stage(phase)
        if self.reset_optimizer_on_growth and stage != self.stage:
            for optimizer in optimizers:
                getattr(optimizer, "optimizer", optimizer).state.clear()  # moments and step counts
            self.stage = stage
            host.optimizer_stage.fill_(stage)
        if self.lr_schedule_by_resolution:
            for optimizer, lr in zip(optimizers, self.learning_rates(phase.resolution)):
                set_lr(getattr(optimizer, "optimizer", optimizer), lr, [])

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**batch, "image": self.real_images(batch["image"])}

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        """Advance the clock by the update's real images (all ranks) and log the update's phase."""
        self.clock.advance(self.clock.images_in(micro_batches))
        phase = self.phase
        logs.update({"train/resolution": float(phase.resolution), "train/alpha": phase.alpha})
        self.update_phase = None

    def _reread(self, host: nn.Module, incompatible_keys: Any) -> None:
        # After load_state_dict: the host copy follows the loaded stage. Checkpoints written before
        # ``optimizer_stage`` existed load too: the stage is then the loaded phase's. (The clock's
        # hook, registered first, has already reread the images seen.)
        missing = [k for k in incompatible_keys.missing_keys if k == "optimizer_stage" or k.endswith(".optimizer_stage")]
        for key in missing:
            incompatible_keys.missing_keys.remove(key)
        if missing:
            host.optimizer_stage.fill_(optimizer_stage(self.schedule.phase(self.clock.count)))
        self.stage = int(host.optimizer_stage)


def optimizer_stage(phase: Phase) -> int:
    """Stabilizing level L -> 2L, fading level L in -> 2L - 1: the official code resets Adam when
    floor(lod) or ceil(lod) changes, i.e. when a fade starts and when it ends."""
    return 2 * phase.level - (1 if phase.alpha < 1.0 else 0)


def set_lr(optimizer: Any, lr: float, schedulers: list[Any]) -> None:
    """Set the base learning rate of every group, keeping the factor an LR scheduler applied."""
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        group["lr"] = group["lr"] * lr / base if base else lr
        if "initial_lr" in group:
            group["initial_lr"] = lr
        for scheduler in schedulers:
            scheduler.base_lrs[i] = lr


def _check_growth_options(minibatch: Optional[dict[int, int]], lrs: Optional[dict[int, float]], accumulate: int, lr_schedule: str) -> None:
    if minibatch and any(int(v) < 1 for v in minibatch.values()):
        raise InvalidValue(f"model option minibatch_schedule={minibatch!r} is invalid: every entry must be >= 1 images")
    if minibatch and accumulate != 1:
        raise InvalidValue("model options minibatch_schedule and accumulate_grad_batches exclude each other: the schedule sets the micro-batches per update")
    if lrs and any(float(v) <= 0 for v in lrs.values()):
        raise InvalidValue(f"model option lr_schedule_by_resolution={lrs!r} is invalid: every rate must be positive")
    if lrs and lr_schedule != "constant":
        raise InvalidValue("model option lr_schedule_by_resolution needs lr_schedule: constant (the two would both set the rate)")
