"""The GAN training loop, written once.

`AdversarialModel` owns the manual-optimization loop of a GAN, so a subclass writes only its
losses (Goodfellow et al. 2014, arXiv:1406.2661, Algorithm 1): ``n_critic`` discriminator
updates per generator update, each update toggled so no gradient leaks between the players,
fakes generated once per batch and detached for the discriminator, gradient clipping applied
after AMP unscaling, and per-iteration LR schedulers stepped only when their optimizer stepped.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Any, Literal, Optional

import pytorch_lightning as pl
from lightning_utilities.core.apply_func import apply_to_collection
import torch
from torch import Tensor, nn

from genmodels.base import GenerativeModel
from genmodels.compat import ddp_kwargs_of, has_trainer, logger_will_write
from genmodels.gans.augment import AdaptiveAugment, make_augment
from genmodels.gans.losses import LOSSES, PROBABILITY_LOSSES, LeCamAnchors, clip_weights_, gradient_penalty, r1_penalty
from genmodels.gans.losses import require_per_sample_critic
from genmodels.gans.stabilization import (
    apply_spectral_norm,
    ema_decay_at,
    instance_noise_std,
    lr_factor,
    make_ema,
    update_ema,
)

__all__ = ["AdversarialModel"]


# ---------------------------------------------------------------------------------------------


class AdversarialModel(GenerativeModel):
    """The GAN training loop and its stabilization options, written once.

    Each batch (Goodfellow et al. 2014, Algorithm 1):

    1. draw fakes once (``generate``);
    2. update D on the real batch and the detached fakes, with the configured loss and penalty;
    3. every ``n_critic``-th batch, update G through the updated D on the same fakes.

    A subclass builds its networks and hands them to `build`; it may override `generate`,
    `discriminator_loss` or `generator_loss` (image-to-image models add reconstruction terms).

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        loss: ``nonsaturating`` | ``minimax`` | ``hinge`` | ``least_squares`` | ``wasserstein``.
        penalty: on D: ``gp`` (on interpolates, WGAN-GP), ``r1`` (real images), ``r2`` (fakes) or null.
        penalty_weight: lambda for ``gp`` (10 in the paper); gamma for ``r1``/``r2`` (the
            regularizer is gamma / 2 times the squared gradient norm).
        penalty_interval: lazy regularization: apply the penalty every k-th D step, weighted by k.
        n_critic: discriminator updates per generator update (each on its own real batch).
        weight_clip: clamp D's weights to [-c, c] before each D step (WGAN's official order); null disables.
        spectral_norm: spectrally normalize D's convolutions and linear layers.
        feature_matching: train G to match the mean of D's intermediate features on real and
            fake batches (Salimans et al. 2016, arXiv:1606.03498, Sec. 3.1) instead of fooling D.
        label_smoothing: one-sided label smoothing: D's target for real images is ``1 - s``.
        instance_noise: std of Gaussian noise added to D's real and fake inputs ...
        instance_noise_iterations: ... annealed linearly to 0 over this many iterations (0: constant).
        optimizer: ``adam`` or ``rmsprop`` for both players.
        lr_g, lr_d: learning rates; different values give TTUR (Heusel et al. 2017, arXiv:1706.08500).
        betas: Adam betas.
        lr_schedule: ``constant`` | ``linear`` | ``cosine``, stepped per iteration.
        lr_warmup_iterations: linear warm-up length.
        lr_decay_start, lr_decay_end: iterations where the decay starts and reaches 0.
        lr_decay_every: the decayed rate changes only every k iterations (k = iterations per epoch
            reproduces a schedule stepped once per epoch, as CycleGAN's authors' code does).
        ema_decay: keep an exponential moving average of G with this decay (e.g. 0.999); `sample`
            and the metrics then use it. Null disables.
        ema_start: iteration from which the average starts (before it, the EMA copies G).
        grad_clip_norm: clip each player's gradient norm (after AMP unscaling); the Trainer's
            ``gradient_clip_val`` does not apply under manual optimization.
        accumulate_grad_batches: micro-batches per update (the Trainer flag does not apply under
            manual optimization). Both players see the same k micro-batches, D first, then G
            through the updated D, so k micro-batches of size B equal one batch of size kB
            (without BatchNorm); under DDP gradients are all-reduced once per update (no_sync).
            An iteration is one update, so schedules and intervals keep their meaning.
        compile: ``torch.compile`` G and D (each network in place, never the LightningModule,
            whose toggle_optimizer bookkeeping breaks under compilation; state-dict keys are
            unchanged, so checkpoints move freely between compiled and eager runs). D is left
            eager with a gradient penalty: compiled graphs do not support the double backward.
        channels_last: NHWC memory format for networks and images (faster convolutions on
            tensor cores).
        fused_optimizer: fused Adam/RMSprop kernels (one kernel per step instead of one per tensor).
        augment: differentiable augmentation T of every image D sees in training (reals and
            fakes in D's step, fakes in G's step, penalty inputs): ``diffaugment`` (Zhao et al.
            2020), ``ada`` (Karras et al. 2020, adaptive p) or null; see `genmodels.gans.augment`.
        augment_policy: DiffAugment's ops, a subset of ``color,translation,cutout``.
        ada_target, ada_interval, ada_kimg: ADA's r_t target (0.6), iterations between p
            adjustments (4) and thousands of real images for p to move by 1 (500).
        lecam_weight: weight of LeCam regularization on D (Tseng et al. 2021; 0 disables).
        lecam_decay: decay of LeCam's EMA anchors (0.9, google/lecam-gan; anchors start at 1000, are
            copied before generator iteration 1000 and the term counts after it: `LeCamAnchors`).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        loss: Literal["nonsaturating", "minimax", "hinge", "least_squares", "wasserstein"] = "nonsaturating",
        penalty: Optional[Literal["gp", "r1", "r2"]] = None,
        penalty_weight: float = 10.0,
        penalty_interval: int = 1,
        n_critic: int = 1,
        weight_clip: Optional[float] = None,
        spectral_norm: bool = False,
        feature_matching: bool = False,
        label_smoothing: float = 0.0,
        instance_noise: float = 0.0,
        instance_noise_iterations: int = 0,
        optimizer: Literal["adam", "rmsprop"] = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_schedule: Literal["constant", "linear", "cosine"] = "constant",
        lr_warmup_iterations: int = 0,
        lr_decay_start: int = 0,
        lr_decay_end: int = 0,
        lr_decay_every: int = 1,
        ema_decay: Optional[float] = None,
        ema_start: int = 0,
        grad_clip_norm: Optional[float] = None,
        accumulate_grad_batches: int = 1,
        compile: bool = False,
        channels_last: bool = False,
        fused_optimizer: bool = False,
        augment: Optional[Literal["diffaugment", "ada"]] = None,
        augment_policy: str = "color,translation,cutout",
        ada_target: float = 0.6,
        ada_interval: int = 4,
        ada_kimg: float = 500.0,
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.9,
    ) -> None:
        super().__init__(image_shape)
        _validate_adversarial_options(locals())
        self.loss_name, self.penalty = loss, penalty
        self.penalty_weight, self.penalty_interval = penalty_weight, penalty_interval
        self.n_critic, self.weight_clip = n_critic, weight_clip
        self.use_spectral_norm, self.feature_matching = spectral_norm, feature_matching
        self.label_smoothing = label_smoothing
        self.instance_noise, self.instance_noise_iterations = instance_noise, instance_noise_iterations
        self.optimizer_name, self.lr_g, self.lr_d, self.betas = optimizer, lr_g, lr_d, tuple(betas)
        self.lr_schedule = (lr_schedule, lr_warmup_iterations, lr_decay_start, lr_decay_end)
        self.lr_decay_every = lr_decay_every
        self.ema_decay, self.ema_start = ema_decay, ema_start
        self.grad_clip_norm = grad_clip_norm
        self.accumulate_grad_batches = accumulate_grad_batches
        self.compile_networks, self.channels_last, self.fused_optimizer = compile, channels_last, fused_optimizer
        self.d_loss_fn, self.g_loss_fn = LOSSES[loss]
        self.generator_ema: Optional[nn.Module] = None
        # Modules so their state (ADA's p, LeCam's anchors) lives in the state dict and resumes.
        self.augment_pipe = make_augment(augment, augment_policy, ada_target, ada_interval, ada_kimg)
        self.lecam_weight = lecam_weight
        self.lecam = LeCamAnchors(lecam_decay, d_steps_per_iteration=n_critic) if lecam_weight > 0 else None
        self.automatic_optimization = False
        # Validation noise comes from its own generator so evaluation never advances the training
        # RNG stream (a resumed run must see the same noise as an uninterrupted one).
        self._val_seed = 1234
        self._logging_step = False
        self._micro_batches: list[dict[str, Tensor]] = []

    #: Update G before D in each iteration, both on the same fakes (CycleGAN's authors' order).
    generator_first: bool = False

    # -- networks -----------------------------------------------------------------------------
    generator: nn.Module
    discriminator: nn.Module

    def build(self, generator: nn.Module, discriminator: nn.Module) -> None:
        """Install the two networks and the options that wrap them (spectral norm, EMA)."""
        if self.feature_matching and not callable(getattr(discriminator, "features", None)):
            raise ValueError(f"feature_matching needs a discriminator with a features() method; {type(discriminator).__name__} has none")
        require_per_sample_critic(discriminator, self.penalty)
        self.generator = generator
        self.discriminator = apply_spectral_norm(discriminator) if self.use_spectral_norm else discriminator
        self.generator_ema = make_ema(generator) if self.ema_decay is not None else None

    @property
    def sampling_generator(self) -> nn.Module:
        """The network `sample` uses: the EMA of G when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def condition(self, batch: dict[str, Tensor]) -> Any:
        """What G and D are conditioned on for this batch (class labels, attributes, ...); None here."""
        return None

    def configure_model(self) -> None:
        # Lightning calls this once the model is on its device, before optimizers exist.
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_networks and not getattr(self, "_compiled", False):
            _compile_networks(self.generator)
            if self.penalty is None:
                _compile_networks(self.discriminator)
            self._compiled = True

    def discriminate(self, images: Tensor, condition: Any = None) -> Tensor:
        """D's output on ``images`` (given ``condition``), with annealed instance noise while training."""
        images = self.augment(images)
        std = instance_noise_std(self.iteration, self.instance_noise, self.instance_noise_iterations)
        if std > 0 and self.training:
            images = images + std * torch.randn_like(images)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.discriminator(images) if condition is None else self.discriminator(images, condition)

    def discriminate_pair(self, real: Tensor, fake: Any, condition: Any = None) -> tuple[Tensor, Tensor]:
        """D's outputs on the real batch and the fakes of a D step (two passes here; BigGAN: one)."""
        return self.discriminate(real, condition), self.discriminate(fake, condition)

    def augment(self, images: Tensor) -> Tensor:
        """T(x): the configured differentiable augmentation while training, the identity otherwise."""
        if self.augment_pipe is None or not self.training:
            return images
        return self.augment_pipe(images)

    def output_regularizers(self, real_out: Tensor, fake_out: Tensor, logs: dict[str, Tensor]) -> Any:
        """D-step terms on D's outputs: ADA's overfitting statistic and LeCam (0 when neither is on)."""
        if isinstance(self.augment_pipe, AdaptiveAugment):
            self.augment_pipe.observe(real_out)
        if self.lecam is None:
            return 0.0
        value = self.lecam(real_out, fake_out)
        logs["train/penalty_lecam"] = value.detach()
        return self.lecam_weight * value

    def discriminator_features(self, images: Tensor, condition: Any = None) -> Tensor:
        """D's last hidden features (feature matching), flattened per sample."""
        images = self.augment(images)
        features = self.discriminator.features(images) if condition is None else self.discriminator.features(images, condition)
        return features.flatten(1)

    # -- what a subclass may override ---------------------------------------------------------
    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """Fakes from the trained (not the averaged) generator for one batch."""
        raise NotImplementedError

    def discriminator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss on the real batch and detached fakes, plus its (lazy) penalty."""
        real, condition = batch["image"], self.condition(batch)
        real_out, fake_out = self.discriminate_pair(real, fake, condition)
        loss = self.d_loss_fn(real_out, fake_out, real_target=1.0 - self.label_smoothing)
        # D(real)/D(fake) statistics only when they are written: a few kernels less per iteration.
        logs = self._discriminator_stats(real_out, fake_out) if getattr(self, "_logging_step", True) else {}
        loss = loss + self.output_regularizers(real_out, fake_out, logs)
        if self.penalty is not None and self.iteration % self.penalty_interval == 0:
            value, grad_norm = self._penalty_value(real, fake, condition)
            loss = loss + self._penalty_scale() * value
            logs.update({f"train/penalty_{self.penalty}": value.detach(), f"train/{self.penalty}_grad_norm": grad_norm})
        return loss, logs

    def generator_loss(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's adversarial loss, or feature matching against D's features of the real batch."""
        condition = self.condition(batch)
        if not self.feature_matching:
            return self.g_loss_fn(self.discriminate(fake, condition)), {}
        with torch.no_grad():
            real_features = self.discriminator_features(batch["image"], condition).mean(0)
        fake_features = self.discriminator_features(fake, condition).mean(0)
        return (real_features - fake_features).pow(2).mean(), {}

    def _penalty_value(self, real: Tensor, fake: Tensor, condition: Any = None) -> tuple[Tensor, Tensor]:
        def critic(x: Tensor) -> Tensor:
            x = self.augment(x)  # the gradient is taken through T, as in the official ADA code
            return self.discriminator(x) if condition is None else self.discriminator(x, condition)

        if self.penalty == "gp":
            return gradient_penalty(critic, real, fake)
        return r1_penalty(critic, real if self.penalty == "r1" else fake)

    def _penalty_scale(self) -> float:
        # gamma / 2 for R1/R2 (Mescheder et al., Eq. 9); lambda for GP; times k when lazy.
        weight = self.penalty_weight / 2 if self.penalty in ("r1", "r2") else self.penalty_weight
        return weight * self.penalty_interval

    def _discriminator_stats(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        real_out, fake_out = real_out.detach().float(), fake_out.detach().float()
        if self.loss_name in PROBABILITY_LOSSES:
            return {"train/d_real": torch.sigmoid(real_out).mean(), "train/d_fake": torch.sigmoid(fake_out).mean()}
        stats = {"train/d_real": real_out.mean(), "train/d_fake": fake_out.mean()}
        if self.loss_name == "wasserstein":
            # The critic's estimate of W(P_r, P_g) (up to its Lipschitz constant).
            stats["train/wasserstein_estimate"] = stats["train/d_real"] - stats["train/d_fake"]
        return stats

    # -- the loop -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        _require_unused_parameter_handling(self.trainer)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # Gradient accumulation: an iteration is one update of each player from
        # `accumulate_grad_batches` micro-batches, run together when the last one arrives.
        self._micro_batches.append(batch)
        if len(self._micro_batches) < self.accumulate_grad_batches:
            return
        micro_batches, self._micro_batches = self._micro_batches, []
        opt_g, opt_d = self.optimizers()
        update_generator = (self.iteration + 1) % self.n_critic == 0
        self._logging_step = logger_will_write(self.trainer)

        # 1. Fakes once per micro-batch; keep G's graph only when G is updated on them.
        with torch.set_grad_enabled(update_generator):
            fakes = [self.generate(b) for b in micro_batches]

        if self.generator_first:
            # CycleGAN's optimize_parameters order: G through the current D, then D on the same fakes.
            logs = self._generator_step(opt_g, micro_batches, fakes) if update_generator else {}
            logs.update(self._discriminator_step(opt_d, micro_batches, fakes))
        else:
            # 2. D on real and detached fakes; 3. G through the updated D on the same fakes.
            logs = self._discriminator_step(opt_d, micro_batches, fakes)
            if update_generator:
                logs.update(self._generator_step(opt_g, micro_batches, fakes))

        self.iteration += 1
        if self._logging_step:
            self.log_dict(dict(logs, iteration=float(self.iteration)), on_step=True, on_epoch=False, logger=True)

    def _discriminator_step(self, opt_d: Any, micro_batches: list[dict[str, Tensor]], fakes: list[Any]) -> dict[str, Tensor]:
        """D's weight clipping (WGAN), then its update on real and detached fakes.

        The official WGAN (martinarjovsky/WassersteinGAN main.py) clamps D's weights at the start of
        every D iteration, before its loss: G's step then sees D as updated, not clipped.
        """
        if self.weight_clip is not None:
            clip_weights_(self.discriminator, self.weight_clip)
        d_losses = [partial(self.discriminator_loss, b, _detach(f)) for b, f in zip(micro_batches, fakes)]
        loss_d, logs = self._update(opt_d, d_losses, "d")
        logs.update(self.regularization_step("d", opt_d, micro_batches))
        logs["train/loss_d"] = loss_d
        if isinstance(self.augment_pipe, AdaptiveAugment):
            # ADA: p follows the overfitting statistic r_t every `interval` iterations.
            if (self.iteration + 1) % self.augment_pipe.interval == 0:
                self.augment_pipe.adjust()
            logs.update({"train/ada_p": self.augment_pipe.p.clone(), "train/ada_rt": self.augment_pipe.rt.clone()})
        return logs

    # How G's EMA treats BN statistics: "copy" the live G's, or "interpolate" them (BigGAN).
    ema_buffers: str = "copy"

    def _generator_step(self, opt_g: Any, micro_batches: list[dict[str, Tensor]], fakes: list[Any]) -> dict[str, Tensor]:
        """G's update through D on the fakes, its separate regularization step, then the moving average of G."""
        g_losses = [partial(self.generator_loss, b, f) for b, f in zip(micro_batches, fakes)]
        loss_g, logs = self._update(opt_g, g_losses, "g")
        logs["train/loss_g"] = loss_g
        logs.update(self.regularization_step("g", opt_g, micro_batches))
        if self.generator_ema is not None:
            update_ema(self.generator_ema, self.generator, self.ema_beta(micro_batches), self.ema_buffers)
        return logs

    def regularization_step(self, player: str, optimizer: Any, micro_batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """A separate regularization update of ``player`` ("d" or "g") after its main update; none here.

        StyleGAN2's lazy regularization overrides this (its own optimizer step on the regularizer).
        """
        return {}

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """Decay of G's moving average for this update."""
        return ema_decay_at(self.iteration, self.ema_decay, self.ema_start)

    def _update(self, optimizer: Any, losses: list[Any], player: str, step_schedulers: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        """One toggled update of ``optimizer`` from the mean of ``losses`` (one per micro-batch).

        zero_grad, a backward per micro-batch (all-reduced under DDP only on the last one), step,
        then the LR schedulers unless AMP skipped the step (or ``step_schedulers`` is off: a
        regularization step is not an iteration).
        """
        total: Optional[Tensor] = None
        logs: dict[str, Tensor] = {}
        with self.toggled_optimizer(optimizer):
            optimizer.zero_grad(set_to_none=True)
            for i, compute_loss in enumerate(losses):
                loss, micro_logs = compute_loss()
                with self._gradient_sync(last=i == len(losses) - 1):
                    self.manual_backward(loss / len(losses))
                total = loss.detach() if total is None else total + loss.detach()
                for key, value in micro_logs.items():
                    logs[key] = logs.get(key, 0) + value.detach() / len(losses)
            scale_before = self._amp_scale()
            optimizer.step()  # clipping happens in on_before_optimizer_step, after unscaling
            if self._logging_step:
                logs[f"train/grad_norm_{player}"] = _grad_norm(optimizer)
        if step_schedulers and not self._amp_skipped_step(scale_before):
            self._step_schedulers(optimizer)
        return total / len(losses), logs

    def _gradient_sync(self, last: bool) -> Any:
        """DDP's no_sync for non-final micro-batches: all-reduce the accumulated gradient once."""
        model = self.trainer.model if has_trainer(self) else None
        if last or not callable(getattr(model, "no_sync", None)):
            return nullcontext()
        return model.no_sync()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Under 16-mixed Lightning unscales the gradients just before this hook, so the clip acts
        # on true gradient norms.
        if self.grad_clip_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip_norm, gradient_clip_algorithm="norm")

    def _amp_scale(self) -> Optional[float]:
        """The fp16 GradScaler's scale, read only when a schedule depends on it (host sync)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is None or not scaler.is_enabled() or not self.trainer.lr_scheduler_configs:
            return None
        return scaler.get_scale()

    def _amp_skipped_step(self, scale_before: Optional[float]) -> bool:
        # GradScaler skips a step with inf/NaN gradients and lowers its scale; the schedule must
        # not advance for a step that did not happen.
        return scale_before is not None and self.trainer.precision_plugin.scaler.get_scale() < scale_before

    def _step_schedulers(self, optimizer: Any) -> None:
        # Manual optimization never steps schedulers; step per iteration those that belong to the
        # optimizer that just stepped.
        raw = getattr(optimizer, "optimizer", optimizer)
        for config in self.trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is raw:
                config.scheduler.step()

    # -- optimizers ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt_g = self._make_optimizer(self.generator.parameters(), self.lr_g)
        opt_d = self._make_optimizer(self.discriminator.parameters(), self.lr_d)
        schedule, warmup, start, end = self.lr_schedule
        if schedule == "constant" and warmup == 0:
            return [opt_g, opt_d]  # order matters: the loop unpacks (G, D)

        def factor(step: int) -> float:
            # Driven by the model's iteration, not the scheduler's own count (G steps less often
            # than D with n_critic > 1). A scheduler steps at the end of an iteration, setting the
            # rate of the next one; step 0 is construction (or re-construction on resume).
            return lr_factor(self.iteration + (1 if step > 0 else 0), schedule, warmup, start, end, self.lr_decay_every)

        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def _make_optimizer(self, params: Any, lr: float) -> torch.optim.Optimizer:
        fused = {"fused": True} if self.fused_optimizer else {}
        if self.optimizer_name == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, **({"foreach": True} if self.fused_optimizer else {}))
        return torch.optim.Adam(params, lr=lr, betas=self.betas, **fused)

    # -- evaluation of the two players --------------------------------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        generator = torch.Generator(device=self.device).manual_seed(self._val_seed + batch_idx)
        fake = self.generate(batch, generator=generator)
        condition = self.condition(batch)
        stats = self._discriminator_stats(self.discriminate(batch["image"], condition), self.discriminate(fake, condition))
        logs = {k.replace("train/", f"{stage}/"): v for k, v in stats.items()}
        self.log_dict(logs, batch_size=batch["image"].shape[0], sync_dist=True)


def _compile_networks(module: nn.Module) -> None:
    """``torch.compile`` a network in place, or each network of a container that is never called.

    A pair such as CycleGAN's (G, F) is held in a module without a ``forward`` of its own: compiling
    the container would compile nothing that runs.
    """
    if type(module).forward is nn.Module.forward:
        for child in module.children():
            _compile_networks(child)
    else:
        module.compile()


def _detach(fake: Any) -> Any:
    """Detach a tensor or a structure of tensors (models with several generators return tuples)."""
    return apply_to_collection(fake, Tensor, Tensor.detach)


def _grad_norm(optimizer: Any) -> Tensor:
    """Total L2 norm of the gradients an optimizer is about to apply (a device tensor: no sync)."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def _validate_adversarial_options(options: dict[str, Any]) -> None:
    """Clear errors for impossible option values, naming the key."""
    checks = [
        ("loss", options["loss"] in LOSSES, f"one of {sorted(LOSSES)}"),
        ("penalty", options["penalty"] in (None, "gp", "r1", "r2"), "gp, r1, r2 or null"),
        ("penalty_weight", options["penalty_weight"] >= 0, ">= 0"),
        ("penalty_interval", options["penalty_interval"] >= 1, ">= 1"),
        ("n_critic", options["n_critic"] >= 1, ">= 1"),
        ("weight_clip", options["weight_clip"] is None or options["weight_clip"] > 0, "positive or null"),
        ("label_smoothing", 0.0 <= options["label_smoothing"] < 1.0, "in [0, 1)"),
        ("instance_noise", options["instance_noise"] >= 0, ">= 0"),
        ("optimizer", options["optimizer"] in ("adam", "rmsprop"), "adam or rmsprop"),
        ("lr_g", options["lr_g"] > 0, "positive"),
        ("lr_d", options["lr_d"] > 0, "positive"),
        ("betas", len(options["betas"]) == 2 and all(0.0 <= b < 1.0 for b in options["betas"]), "two values in [0, 1)"),
        ("lr_schedule", options["lr_schedule"] in ("constant", "linear", "cosine"), "constant, linear or cosine"),
        ("lr_decay_every", options["lr_decay_every"] >= 1, ">= 1"),
        ("ema_decay", options["ema_decay"] is None or 0.0 < options["ema_decay"] < 1.0, "in (0, 1) or null"),
        ("grad_clip_norm", options["grad_clip_norm"] is None or options["grad_clip_norm"] > 0, "positive or null"),
        ("accumulate_grad_batches", options["accumulate_grad_batches"] >= 1, ">= 1"),
        ("augment", options["augment"] in (None, "diffaugment", "ada"), "diffaugment, ada or null"),
        ("ada_target", 0.0 < options["ada_target"] < 1.0, "in (0, 1)"),
        ("ada_interval", options["ada_interval"] >= 1, ">= 1"),
        ("ada_kimg", options["ada_kimg"] > 0, "positive"),
        ("lecam_weight", options["lecam_weight"] >= 0, ">= 0"),
        ("lecam_decay", 0.0 <= options["lecam_decay"] < 1.0, "in [0, 1)"),
    ]
    for key, ok, allowed in checks:
        if not ok:
            raise ValueError(f"model option {key}={options[key]!r} is invalid: must be {allowed}")
    if options["lr_schedule"] != "constant" and options["lr_decay_end"] <= options["lr_decay_start"]:
        raise ValueError("lr_schedule needs lr_decay_end > lr_decay_start (iterations where the decay ends and starts)")


def _require_unused_parameter_handling(trainer: pl.Trainer) -> None:
    """Fail fast on DDP without unused-parameter handling.

    Lightning wraps G and D in one DistributedDataParallel, and each of the two backward passes
    of a GAN step leaves the other player's parameters without gradients; DDP without
    ``find_unused_parameters`` would hang or raise deep inside the reducer at the next step.
    """
    strategy = trainer.strategy
    ddp_kwargs = ddp_kwargs_of(strategy)
    if ddp_kwargs is None or trainer.world_size < 2:
        return
    if not ddp_kwargs.get("find_unused_parameters", False):
        raise pl.utilities.exceptions.MisconfigurationException(
            "adversarial models update G and D with separate backward passes, so each pass leaves "
            "the other network's parameters unused; run DDP with "
            "`--trainer.strategy ddp_find_unused_parameters_true`"
        )
