"""The GAN training step, written once, as a table of phases.

`AdversarialModel` owns the manual-optimization loop of every GAN in the package, the way NVlabs'
stylegan3 (``training_loop.py`` + ``loss.py``, ``accumulate_gradients(phase, ...)``) writes it:

- **Phases as data** (`Phase`): D main, D regularization, G main, G regularization, each with its
  interval and its own optimizer step. A regularizer every k iterations is *lazy* (Karras et al.
  2020, arXiv:1912.04958, Sec. 3.1): weighted by k, either fused into the main phase (the paper's
  description) or, with ``lazy_regularization: separate`` (the official code), run as its own
  phase, with that player's Adam at lr * c and betas ** c, c = k / (k + 1). D runs ``n_critic``
  times per G update (Goodfellow et al. 2014, arXiv:1406.2661, Algorithm 1); the default order is
  D then G, ``generator_first`` is the order of CycleGAN's and StyleGAN2's authors (G, then D).
- **The loop owns every shared option** (`SHARED_OPTIONS`): augmentation of every image D sees
  (DiffAugment, ADA and ADA's observation of D's real outputs), instance noise, label smoothing,
  LeCam on each D head, the gradient penalties (GP, R1, R2; lazy or not) on each discriminator,
  feature matching, EMA of G, weight and gradient clipping, gradient accumulation with DDP's
  no_sync, and AMP. An option a family cannot take is refused when the model is built, in one
  line naming the families that take it (`refused_options`); none is accepted and ignored.
- **A family supplies only what is its own**: its networks (`build`), what its discriminators
  judge (`judged`: real and fake images, conditions and mismatched conditions, per discriminator
  `critics`; several heads per output in `heads`), its adversarial terms as functions of the D
  outputs (`discriminator_term`, `generator_term`; the defaults sum the configured loss over the
  heads), and its extra terms (`generator_extras`, `discriminator_extras`, `generator_regularizer`).

Each update is toggled so no gradient leaks between the players; fakes are generated once per
batch (detached for D); gradient clipping happens after AMP unscaling; LR schedulers step per
iteration only when their optimizer stepped in a main phase.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, Optional

import pytorch_lightning as pl
from lightning_utilities.core.apply_func import apply_to_collection
import torch
from torch import Tensor, nn

from genmodels.base import GenerativeModel
from genmodels.compat import ddp_kwargs_of, has_trainer, logger_will_write, register_load_state_dict_pre_hook
from genmodels.errors import InvalidValue, UserError
from genmodels.gans.augment import AdaptiveAugment, make_augment
from genmodels.gans.losses import LOSSES, LeCamAnchors, clip_weights_, gradient_penalty, r1_penalty
from genmodels.gans.losses import require_per_sample_critic
from genmodels.gans.stabilization import (
    apply_spectral_norm,
    ema_decay_at,
    instance_noise_std,
    lr_factor,
    make_ema,
    update_ema,
)

__all__ = ["AdversarialModel", "Head", "Judged", "Outputs", "Phase", "SHARED_OPTIONS", "total"]


# ---------------------------------------------------------------------------------------------
# The data the loop works on


@dataclass(frozen=True)
class Phase:
    """One optimizer step of one player, due when ``(iteration + offset) % interval == 0``.

    ``main``: the phase computes the adversarial term (and the family's extra terms);
    ``reg_interval``: the phase also adds the player's regularizer, weighted by this interval,
    when ``iteration % reg_interval == 0`` (a separate lazy phase has ``main=False`` and
    ``interval == reg_interval``; a fused one ``main=True``).
    """

    name: str
    player: Literal["d", "g"]
    interval: int = 1
    offset: int = 0
    main: bool = True
    reg_interval: Optional[int] = None

    def due(self, iteration: int) -> bool:
        return (iteration + self.offset) % self.interval == 0

    def regularizes(self, iteration: int) -> bool:
        return self.reg_interval is not None and iteration % self.reg_interval == 0


@dataclass
class Judged:
    """What one discriminator judges for one batch: real and fake images, under conditions.

    ``fake_condition``: the fakes' own condition when it is not the real images' (BigGAN's
    sampled fake labels); ``wrong_condition``: a matching-aware discriminator (Reed et al. 2016,
    arXiv:1605.05396) also judges the real images under mismatched conditions, as fakes.
    """

    real: Any
    fake: Any
    condition: Any = None
    wrong_condition: Any = None
    fake_condition: Any = None

    @property
    def condition_of_fakes(self) -> Any:
        return self.condition if self.fake_condition is None else self.fake_condition


@dataclass(frozen=True)
class Head:
    """One scored output: ``critic``'s output, indexed by ``index`` (None: the whole output).

    ``matching``: the head judges the condition (it sees the mismatched pairs); an unconditional
    head beside a conditional one (StackGAN-II, AttnGAN) has ``matching=False``.
    """

    critic: str = "d"
    index: Optional[tuple[Any, ...]] = None
    matching: bool = True

    def select(self, out: Optional[Tensor]) -> Optional[Tensor]:
        return out if out is None or self.index is None else out[self.index]


@dataclass
class Outputs:
    """D's outputs of one head: on the real, fake and (matching-aware) mismatched inputs."""

    real: Optional[Tensor]
    fake: Tensor
    wrong: Optional[Tensor] = None


@dataclass(frozen=True)
class SharedOption:
    """A shared option: when it is on, and where the loop applies it."""

    active: Callable[[dict[str, Any]], bool]
    where: str


#: Every option the loop applies, and where. A family that cannot take one lists it in
#: ``refused_options`` (with the reason); building it with the option on is refused.
SHARED_OPTIONS: dict[str, SharedOption] = {
    "augment": SharedOption(lambda o: o["augment"] is not None, "every image each discriminator sees, and the penalty inputs"),
    "instance_noise": SharedOption(lambda o: o["instance_noise"] > 0, "every image each discriminator sees in training"),
    "label_smoothing": SharedOption(lambda o: o["label_smoothing"] > 0, "the real target of every head's D loss"),
    "lecam_weight": SharedOption(lambda o: o["lecam_weight"] > 0, "D's main phase, each head's real and fake outputs"),
    "penalty": SharedOption(lambda o: o["penalty"] is not None, "D's (lazy) regularization, each discriminator's inputs"),
    "feature_matching": SharedOption(lambda o: o["feature_matching"], "G's main phase, each discriminator's features()"),
    "ema_decay": SharedOption(lambda o: o["ema_decay"] is not None, "G's weights after each G update"),
    "weight_clip": SharedOption(lambda o: o["weight_clip"] is not None, "every discriminator's weights after D's main phase"),
}


# ---------------------------------------------------------------------------------------------
class AdversarialModel(GenerativeModel):
    """The GAN training loop and its shared options, written once (see the module docstring).

    Each iteration runs the due phases of `phases` in order, on fakes drawn once per batch
    (``generate``); a family builds its networks and hands them to `build`, and overrides the
    hooks of the "what a family supplies" section only where its paper differs.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        loss: a name of `genmodels.gans.losses.LOSSES`: ``nonsaturating`` | ``minimax`` | ``hinge`` |
            ``least_squares`` | ``wasserstein`` | ``ragan`` | ``ralsgan``.
        penalty: on D: ``gp`` (on interpolates, WGAN-GP), ``r1`` (real images), ``r2`` (fakes) or null.
        penalty_weight: lambda for ``gp`` (10 in the paper); gamma for ``r1``/``r2`` (the
            regularizer is gamma / 2 times the squared gradient norm).
        penalty_interval: lazy regularization: apply the penalty every k-th iteration, weighted by k.
        lazy_regularization: ``fused`` (the lazy penalty is added to D's main loss) or
            ``separate`` (its own optimizer step, Adam at lr * c and betas ** c, c = k / (k + 1):
            the official StyleGAN2 loop). An interval of 1 is never lazy.
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
        ema_start: G update from which the average starts (before it, the EMA copies G); its decay
            ramps up as (1 + t) / (10 + t) over the G updates t since then (the iteration when
            n_critic is 1).
        grad_clip_norm: clip each player's gradient norm (after AMP unscaling); the Trainer's
            ``gradient_clip_val`` does not apply under manual optimization.
        accumulate_grad_batches: micro-batches per update (the Trainer flag does not apply under
            manual optimization). Both players see the same k micro-batches, so k micro-batches
            of size B equal one batch of size kB (without BatchNorm); under DDP gradients are
            all-reduced once per update (no_sync). An iteration is one update, so schedules and
            intervals keep their meaning.
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
        loss: str = "nonsaturating",
        penalty: Optional[Literal["gp", "r1", "r2"]] = None,
        penalty_weight: float = 10.0,
        penalty_interval: int = 1,
        lazy_regularization: Literal["fused", "separate"] = "fused",
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
        options = dict(locals())
        _validate_adversarial_options(options)
        refuse_unsupported_options(type(self), options)
        self.loss_name, self.loss = loss, LOSSES[loss]
        self.penalty, self.penalty_weight, self.penalty_interval = penalty, penalty_weight, penalty_interval
        self.lazy_regularization = lazy_regularization
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
        self.generator_ema: Optional[nn.Module] = None
        # Modules so their state (ADA's p, LeCam's anchors) lives in the state dict and resumes.
        self.augment_pipe = make_augment(augment, augment_policy, ada_target, ada_interval, ada_kimg)
        self.lecam_weight, self.lecam_decay = lecam_weight, lecam_decay
        self.lecam: Optional[nn.ModuleDict] = None  # one pair of anchors per head, made in `build`
        self.automatic_optimization = False
        # Validation noise comes from its own generator so evaluation never advances the training
        # RNG stream (a resumed run must see the same noise as an uninterrupted one).
        self.val_seed = 1234
        self._logging_step = False
        self._micro_batches: list[dict[str, Tensor]] = []
        # Per-step scratch, mutated in place (assigning attributes of an nn.Module costs a lookup of
        # its parameters, buffers and submodules on every step).
        self._reports: dict[str, Tensor] = {}
        self._step_phases: list[Phase] = []

    #: Update G before D in each iteration, D on the same fakes (CycleGAN's and StyleGAN2's authors' order).
    generator_first: bool = False
    #: Shared options this family cannot take, with the reason (see `SHARED_OPTIONS`).
    refused_options: dict[str, str] = {}
    #: How G's EMA treats BN statistics: "copy" the live G's, or "interpolate" them (BigGAN).
    ema_buffers: str = "copy"
    #: Interval of the family's G regularizer (`generator_regularizer`); None: it has none.
    generator_regularization_interval: Optional[int] = None

    # -- networks -----------------------------------------------------------------------------
    generator: nn.Module
    discriminator: nn.Module

    def build(self, generator: nn.Module, discriminator: nn.Module) -> None:
        """Install the two networks and the options that wrap them (spectral norm, EMA, LeCam anchors)."""
        self.generator = generator
        self.discriminator = apply_spectral_norm(discriminator) if self.use_spectral_norm else discriminator
        for name, critic in self.critics().items():
            if self.feature_matching and not callable(getattr(critic, "features", None)):
                raise UserError(f"feature_matching needs discriminators with a features() method; {type(self).__name__}'s "
                                f"{name} ({type(critic).__name__}) has none; set feature_matching: false")
            require_per_sample_critic(critic if isinstance(critic, nn.Module) else self.discriminator, self.penalty)
        self.generator_ema = make_ema(generator) if self.ema_decay is not None else None
        if self.lecam_weight > 0:
            self.lecam = nn.ModuleDict({name: LeCamAnchors(self.lecam_decay, d_steps_per_iteration=self.n_critic) for name in self.heads()})
            register_load_state_dict_pre_hook(self, _single_head_lecam_keys)

    @property
    def sampling_generator(self) -> nn.Module:
        """The network `sample` uses: the EMA of G when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def configure_model(self) -> None:
        # Lightning calls this once the model is on its device, before optimizers exist.
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_networks and not getattr(self, "_compiled", False):
            _compile_networks(self.generator)
            if self.penalty is None:
                _compile_networks(self.discriminator)
            self._compiled = True

    # -- what a family supplies ---------------------------------------------------------------
    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Any:
        """Fakes from the trained (not the averaged) generator for one batch."""
        raise NotImplementedError

    def condition(self, batch: dict[str, Tensor]) -> Any:
        """What G and D are conditioned on for this batch (class labels, attributes, ...); None here."""
        return None

    def critics(self) -> dict[str, Callable[..., Tensor]]:
        """The discriminators by name, each called as ``critic(images)`` or ``critic(images, condition)``."""
        return {"d": self.discriminator}

    def heads(self) -> dict[str, Head]:
        """The scored outputs by name (one per discriminator here); LeCam keeps anchors per head."""
        return {name: Head(name) for name in self.critics()}

    def judged(self, batch: dict[str, Tensor], fake: Any) -> dict[str, Judged]:
        """What each discriminator judges: here the batch's images against the fakes, under `condition`."""
        return {"d": Judged(batch["image"], fake, self.condition(batch))}

    def discriminator_fakes(self, fake: Any) -> Any:
        """The (detached) fakes D trains on: these ones; CycleGAN draws them from a history pool."""
        return fake

    def discriminator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """D's adversarial term from the heads' outputs: the configured loss summed over the heads."""
        return total(self.d_loss(o.real, o.fake) for o in outputs.values())

    def generator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """G's adversarial term from the heads' outputs: the configured loss summed over the heads."""
        return total(self.g_loss(o.fake, o.real) for o in outputs.values())

    def discriminator_extras(self, batch: dict[str, Tensor], fake: Any) -> tuple[Any, dict[str, Tensor]]:
        """The family's own D terms besides the shared penalty (DF-GAN's MA-GP); none here."""
        return 0.0, {}

    def generator_extras(self, batch: dict[str, Tensor], fake: Any) -> tuple[Any, dict[str, Tensor]]:
        """The family's own G terms (L1, cycle, KL, DAMSM, orthogonal regularization); none here."""
        return 0.0, {}

    def generator_regularizer(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The family's lazy G regularizer (StyleGAN2's path length), every `generator_regularization_interval`."""
        raise NotImplementedError

    # -- the losses with the shared options --------------------------------------------------
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """The configured D loss of one head, with one-sided label smoothing."""
        return self.loss.d(real_out, fake_out, 1.0 - self.label_smoothing)

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        """The configured G loss of one head (relativistic losses use the real outputs too)."""
        return self.loss.g(fake_out, real_out)

    def augment(self, images: Any) -> Any:
        """T(x): the configured differentiable augmentation while training, the identity otherwise."""
        if self.augment_pipe is None or not self.training:
            return images
        return apply_to_collection(images, Tensor, self.augment_pipe)

    def discriminate(self, images: Any, condition: Any = None, critic: str = "d") -> Tensor:
        """Discriminator ``critic``'s output on ``images`` (given ``condition``): the images are
        augmented and, while training, get annealed instance noise."""
        images = self.augment(images)
        std = instance_noise_std(self.iteration, self.instance_noise, self.instance_noise_iterations)
        if std > 0 and self.training:
            images = apply_to_collection(images, Tensor, lambda x: x + std * torch.randn_like(x))
        if self.channels_last:
            images = apply_to_collection(images, Tensor, _channels_last)
        net = self.critics()[critic]
        return net(images) if condition is None else net(images, condition)

    def discriminate_pair(self, judged: Judged, critic: str = "d") -> tuple[Tensor, Tensor]:
        """D's outputs on the real images and the fakes of a D step (two passes here; BigGAN: one)."""
        return self.discriminate(judged.real, judged.condition, critic), self.discriminate(judged.fake, judged.condition_of_fakes, critic)

    def judge(self, batch: dict[str, Tensor], fake: Any, real: bool = True) -> dict[str, Outputs]:
        """Every head's outputs on what `judged` gives (the real and mismatched ones only if ``real``)."""
        raw = {}
        for name, j in self.judged(batch, fake).items():
            if real:
                real_out, fake_out = self.discriminate_pair(j, name)
            else:
                real_out, fake_out = None, self.discriminate(j.fake, j.condition_of_fakes, name)
            wrong_out = self.discriminate(j.real, j.wrong_condition, name) if real and j.wrong_condition is not None else None
            raw[name] = (real_out, fake_out, wrong_out)
        outputs = {}
        for name, head in self.heads().items():
            real_out, fake_out, wrong_out = raw[head.critic]
            outputs[name] = Outputs(head.select(real_out), head.select(fake_out), head.select(wrong_out) if head.matching else None)
        return outputs

    # -- the phases ---------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """This model's phases in the order they run (see `Phase`)."""
        separate = self.lazy_regularization == "separate"
        d_reg = self.penalty_interval if self.penalty is not None and self.penalty_weight > 0 else None
        d = _player_phases("D", "d", 1, 0, d_reg, separate)
        g = _player_phases("G", "g", self.n_critic, 1, self.generator_regularization_interval, separate)
        return g + d if self.generator_first else d + g

    def lazy_ratio(self, player: str) -> float:
        """c = k / (k + 1) for a player with a separate regularization phase every k iterations, else 1."""
        for phase in self.phases():
            if phase.player == player and not phase.main:
                return phase.interval / (phase.interval + 1)
        return 1.0

    def discriminator_loss(self, batch: dict[str, Tensor], fake: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """D's main-phase loss on one micro-batch: the adversarial term, LeCam, the family's extras,
        and the penalty when it is fused and due."""
        self._reports.clear()
        outputs = self.judge(batch, fake)
        loss = self.discriminator_term(outputs)
        logs = self.discriminator_stats(outputs) if self._logging_step or not has_trainer(self) else {}
        logs.update(self._reports)
        loss = total([loss, self.output_regularizers(outputs, logs)])
        extra, extra_logs = self.discriminator_extras(batch, fake)
        logs.update(extra_logs)
        phase = self._phase_of("d", main=True)
        if phase is not None and phase.regularizes(self.iteration):
            penalty, penalty_logs = self.discriminator_regularizer(batch, fake)
            loss, logs = loss + penalty, {**logs, **penalty_logs}
        return total([loss, extra]), logs

    def discriminator_regularizer(self, batch: dict[str, Tensor], fake: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """The gradient penalty on every discriminator, weighted (gamma / 2 or lambda) and by its interval."""
        total, values, norms = 0.0, [], []
        for name, j in self.judged(batch, fake).items():
            inputs = {"gp": (j.real, j.fake), "r1": (j.real,), "r2": (j.fake,)}[self.penalty]
            if not all(isinstance(x, Tensor) for x in inputs):
                raise UserError(f"penalty {self.penalty!r} needs image tensors; {type(self).__name__}'s {name} judges "
                                f"{', '.join(type(x).__name__ for x in inputs)}: set penalty: null")
            condition = j.condition_of_fakes if self.penalty == "r2" else j.condition
            critic = partial(self._penalized, name, condition)
            if self.penalty == "gp":
                value, norm = gradient_penalty(critic, j.real, j.fake)
            else:
                value, norm = r1_penalty(critic, j.real if self.penalty == "r1" else j.fake)
            total, values, norms = total + value, values + [value.detach()], norms + [norm]
        weight = self.penalty_weight / 2 if self.penalty in ("r1", "r2") else self.penalty_weight
        logs = {f"train/penalty_{self.penalty}": torch.stack(values).sum(), f"train/{self.penalty}_grad_norm": torch.stack(norms).mean()}
        return weight * self.penalty_interval * total, logs

    def _penalized(self, critic: str, condition: Any, x: Tensor) -> Tensor:
        # The gradient is taken through T, as in the official ADA code; no instance noise.
        net = self.critics()[critic]
        x = self.augment(x)
        return net(x) if condition is None else net(x, condition)

    def generator_loss(self, batch: dict[str, Tensor], fake: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """G's main-phase loss on one micro-batch: the adversarial term (or feature matching), the
        family's extras, and the G regularizer when it is fused and due."""
        self._reports.clear()
        if self.feature_matching:
            loss = self.feature_matching_term(batch, fake)
            logs = {"train/feature_matching": loss.detach()}
        else:
            loss, logs = self.generator_term(self.judge(batch, fake, real=self.loss.relativistic)), {}
        logs.update(self._reports)
        extra, extra_logs = self.generator_extras(batch, fake)
        if extra_logs:
            logs.update(extra_logs, **{"train/loss_g_gan": loss.detach()})
        phase = self._phase_of("g", main=True)
        if phase is not None and phase.regularizes(self.iteration):
            reg, reg_logs = self.generator_regularizer(batch)
            loss, logs = loss + phase.reg_interval * reg, {**logs, **reg_logs}
        return total([loss, extra]), logs

    def feature_matching_term(self, batch: dict[str, Tensor], fake: Any) -> Tensor:
        """Sum over the discriminators of ||E f(x) - E f(G(z))||^2 / dim (Salimans et al. 2016, Sec. 3.1)."""
        total = 0.0
        critics = self.critics()
        for name, j in self.judged(batch, fake).items():
            features = critics[name].features
            def of(x: Any, condition: Any) -> Tensor:
                x = self.augment(x)
                return (features(x) if condition is None else features(x, condition)).flatten(1).mean(0)
            with torch.no_grad():
                real = of(j.real, j.condition)
            total = total + (real - of(j.fake, j.condition_of_fakes)).pow(2).mean()
        return total

    def output_regularizers(self, outputs: dict[str, Outputs], logs: dict[str, Tensor]) -> Any:
        """D-step terms on D's outputs: ADA's overfitting statistic and LeCam per head (0 when neither is on)."""
        if isinstance(self.augment_pipe, AdaptiveAugment) and self.training:
            self.augment_pipe.observe(torch.cat([o.real.detach().flatten() for o in outputs.values()]))
        if self.lecam is None:
            return 0.0
        value = total(self.lecam[name](o.real, o.fake) for name, o in outputs.items())
        logs["train/penalty_lecam"] = value.detach()
        return self.lecam_weight * value

    def discriminator_stats(self, outputs: dict[str, Outputs]) -> dict[str, Tensor]:
        """Mean D(real), D(fake) (and D(mismatched)) over the heads, as probabilities for logit losses."""
        def mean(which: str) -> Optional[Tensor]:
            values = [getattr(o, which).detach().float().flatten() for o in outputs.values() if getattr(o, which) is not None]
            if not values:
                return None
            x = torch.cat(values)
            return (torch.sigmoid(x) if self.loss.logits else x).mean()

        stats = {f"train/d_{k}": v for k in ("real", "fake", "wrong") if (v := mean(k)) is not None}
        if self.loss_name == "wasserstein":
            # The critic's estimate of W(P_r, P_g) (up to its Lipschitz constant).
            stats["train/wasserstein_estimate"] = stats["train/d_real"] - stats["train/d_fake"]
        return stats

    def report(self, name: str, value: Tensor) -> None:
        """Log ``train/<name>`` for this step from inside a term (detached; averaged over micro-batches)."""
        self._reports[f"train/{name}"] = value.detach()

    # -- update hooks a family may use ---------------------------------------------------------
    def begin_update(self, batch: dict[str, Tensor]) -> None:
        """Called with the first micro-batch of an update, before anything runs (growth fixes its phase here)."""

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The micro-batch as the update uses it (growth: real images at the current resolution)."""
        return batch

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        """Called after an update's phases (growth advances its clock and adds its logs)."""

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """Decay of G's moving average for this G update.

        The ramp counts the average's own updates, as TensorFlow's ExponentialMovingAverage counts
        ``num_updates``: G updates, not iterations (with n_critic 5 an iteration count would run
        the ramp 5x faster than the average is updated).
        """
        return ema_decay_at(self.generator_updates_done(), self.ema_decay, self.ema_start)

    def generator_updates_done(self) -> int:
        """G updates in the iterations before this one: iterations j < iteration at which G's main phase is due."""
        phase = self._phase_of("g", main=True)
        if phase is None:
            return 0
        n, offset = phase.interval, phase.offset % phase.interval
        # #{j in [0, i) : (j + offset) % n == 0} = ceil((i + offset) / n) - ceil(offset / n)
        return (self.iteration + offset + n - 1) // n - (offset + n - 1) // n

    @property
    def logging_step(self) -> bool:
        """Whether this iteration's logs are written (statistics cost kernels: compute them only then)."""
        return self._logging_step

    @property
    def in_update(self) -> bool:
        """Whether micro-batches of an unfinished update are pending (gradient accumulation)."""
        return bool(self._micro_batches)

    # -- the loop -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        _require_unused_parameter_handling(self.trainer)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # Gradient accumulation: an iteration is one update of each player from
        # `accumulate_grad_batches` micro-batches, run together when the last one arrives.
        if not self._micro_batches:
            self.begin_update(batch)
        self._micro_batches.append(self.prepare_batch(batch))
        if len(self._micro_batches) < self.accumulate_grad_batches:
            return
        micro_batches, self._micro_batches = self._micro_batches, []
        optimizers = dict(zip(("g", "d"), self.optimizers()))
        self._logging_step = logger_will_write(self.trainer)
        self._step_phases[:] = self.phases()
        due = [phase for phase in self._step_phases if phase.due(self.iteration)]
        update_generator = any(phase.player == "g" and phase.main for phase in due)

        # Fakes once per micro-batch; keep G's graph only when G is updated on them.
        with torch.set_grad_enabled(update_generator):
            fakes = [self.generate(b) for b in micro_batches]
        d_fakes: Optional[list[Any]] = None
        logs: dict[str, Tensor] = {}
        for phase in due:
            if phase.player == "d" and d_fakes is None:
                d_fakes = [self.discriminator_fakes(_detach(f)) for f in fakes]
            logs.update(self.run_phase(phase, optimizers[phase.player], micro_batches, fakes if phase.player == "g" else d_fakes))
        if update_generator and self.generator_ema is not None:
            update_ema(self.generator_ema, self.generator, self.ema_beta(micro_batches), self.ema_buffers)
        if isinstance(self.augment_pipe, AdaptiveAugment):
            # ADA: p follows the overfitting statistic r_t every `interval` iterations.
            if (self.iteration + 1) % self.augment_pipe.interval == 0:
                self.augment_pipe.adjust()
            logs.update({"train/ada_p": self.augment_pipe.p.clone(), "train/ada_rt": self.augment_pipe.rt.clone()})
        self.iteration += 1
        self.end_update(micro_batches, logs)
        if self._logging_step:
            self.log_dict(dict(logs, iteration=float(self.iteration)), on_step=True, on_epoch=False, logger=True)

    def run_phase(self, phase: Phase, optimizer: Any, micro_batches: list[dict[str, Tensor]], fakes: list[Any]) -> dict[str, Tensor]:
        """One optimizer step of ``phase`` from its loss on every micro-batch."""
        if phase.player == "d":
            compute = self.discriminator_loss if phase.main else self.discriminator_regularizer
        else:
            compute = self.generator_loss if phase.main else self._separate_generator_regularizer
        tag = phase.player if phase.main else f"{phase.player}_reg"
        if phase.main and phase.player == "d" and self.weight_clip is not None:
            # The official WGAN (martinarjovsky/WassersteinGAN main.py) clamps D's weights at the
            # start of every D iteration, before its loss: G's step then sees D as updated.
            for critic in self.critics().values():
                clip_weights_(critic if isinstance(critic, nn.Module) else self.discriminator, self.weight_clip)
        loss, logs = self._update(optimizer, [partial(compute, b, f) for b, f in zip(micro_batches, fakes)], tag, phase.main)
        if phase.main:
            logs[f"train/loss_{phase.player}"] = loss
        return logs

    def _separate_generator_regularizer(self, batch: dict[str, Tensor], fake: Any) -> tuple[Tensor, dict[str, Tensor]]:
        reg, logs = self.generator_regularizer(batch)
        return self.generator_regularization_interval * reg, logs

    def _phase_of(self, player: str, main: bool) -> Optional[Phase]:
        for phase in self._step_phases or self.phases():
            if phase.player == player and phase.main == main:
                return phase
        return None

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
        # A separate lazy phase adds 1 step per k to a player's Adam: the official loop keeps the
        # moments' time constants per iteration with betas ** c, and the lr with lr * c.
        opt_g = self._make_optimizer(self.generator.parameters(), self.lr_g, self.lazy_ratio("g"))
        opt_d = self._make_optimizer(self.discriminator.parameters(), self.lr_d, self.lazy_ratio("d"))
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

    def _make_optimizer(self, params: Any, lr: float, c: float = 1.0) -> torch.optim.Optimizer:
        fused = {"fused": True} if self.fused_optimizer else {}
        if self.optimizer_name == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr * c, **({"foreach": True} if self.fused_optimizer else {}))
        betas = tuple(beta**c for beta in self.betas) if c != 1.0 else self.betas
        return torch.optim.Adam(params, lr=lr * c, betas=betas, **fused)

    # -- evaluation of the two players --------------------------------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluate_batch(self.prepare_batch(batch), batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluate_batch(self.prepare_batch(batch), batch_idx, "test")

    def evaluate_batch(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        """Validation/test: D's mean scores on held-out reals and seeded fakes."""
        generator = torch.Generator(device=self.device).manual_seed(self.val_seed + batch_idx)
        fake = self.generate(batch, generator=generator)
        stats = self.discriminator_stats(self.judge(batch, fake))
        logs = {k.replace("train/", f"{stage}/"): v for k, v in stats.items()}
        self.log_dict(logs, batch_size=_batch_size(batch), sync_dist=True)


def total(terms: Any) -> Any:
    """The sum of ``terms``, skipping plain-number zeros (each ``+ 0`` would be one more kernel)."""
    result: Any = 0.0
    for term in terms:
        if isinstance(term, Tensor):
            result = term if isinstance(result, float) and result == 0.0 else result + term
        elif term != 0:
            result = result + term
    return result


def _player_phases(prefix: str, player: str, interval: int, offset: int, reg: Optional[int], separate: bool) -> list[Phase]:
    """A player's phases: main alone, main + fused regularizer, or main and a separate lazy phase."""
    if reg is None:
        return [Phase(f"{prefix}main", player, interval, offset)]  # type: ignore[arg-type]
    if separate and reg > 1:
        return [Phase(f"{prefix}main", player, interval, offset), Phase(f"{prefix}reg", player, reg, 0, main=False, reg_interval=reg)]  # type: ignore[arg-type]
    return [Phase(f"{prefix}both", player, interval, offset, reg_interval=reg)]  # type: ignore[arg-type]


def refuse_unsupported_options(family: type, options: dict[str, Any]) -> None:
    """One line for a shared option ``family`` cannot take, naming the families that take it."""
    for option, reason in family.refused_options.items():
        if SHARED_OPTIONS[option].active(options):
            takers = ", ".join(sorted(name for name, cls in adversarial_families().items() if option not in cls.refused_options))
            raise UserError(f"{family.__name__} does not support {option} ({reason}); the families that do: {takers}")


def adversarial_families() -> dict[str, type]:
    """The exported GAN classes by name."""
    import genmodels

    return {name: obj for name in genmodels.__all__ if isinstance(obj := getattr(genmodels, name), type)
            and issubclass(obj, AdversarialModel) and obj is not AdversarialModel}


def _single_head_lecam_keys(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Checkpoints from before anchors were kept per head hold ``lecam.real/fake/steps``: the one head's."""
    for key in ("real", "fake", "steps"):
        old = state_dict.pop(f"{prefix}lecam.{key}", None)
        if old is not None:
            state_dict[f"{prefix}lecam.d.{key}"] = old


def _channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _batch_size(batch: dict[str, Any]) -> int:
    first = batch.get("image", batch.get("A"))
    return int(first.shape[0])


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
        ("lazy_regularization", options["lazy_regularization"] in ("fused", "separate"), "fused or separate"),
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
            raise InvalidValue(f"model option {key}={options[key]!r} is invalid: must be {allowed}")
    if options["lr_schedule"] != "constant" and options["lr_decay_end"] <= options["lr_decay_start"]:
        raise InvalidValue("lr_schedule needs lr_decay_end > lr_decay_start (iterations where the decay ends and starts)")


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
