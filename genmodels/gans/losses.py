"""Adversarial losses and penalties as pure functions.

Losses take raw discriminator outputs (logits / critic values, no sigmoid applied), so they are
numerically stable and safe under autocast (``binary_cross_entropy`` on probabilities is refused
there). Penalties differentiate D with respect to its input; they run in float32 with autocast off,
whatever the training precision, because fp16 gradients of D's output underflow and
``torch.autograd.grad`` is not loss-scaled by Lightning's GradScaler (PyTorch's AMP recipe for
gradient penalties).

- non-saturating and minimax: Goodfellow et al. 2014, arXiv:1406.2661, Eq. 1 and Sec. 3;
- hinge: Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957;
- least squares: Mao et al. 2017, arXiv:1611.04076, Eq. 9 with a=0, b=c=1;
- relativistic average (RaGAN / RaLSGAN): Jolicoeur-Martineau 2019, arXiv:1807.00734, Sec. 4.2
  (the authors' code, AlexiaJM/RelativisticGAN, halves the paper's sums; so do these);
- Wasserstein: Arjovsky et al. 2017, arXiv:1701.07875, Eq. 3; weight clipping, Algorithm 1;
- gradient penalty: Gulrajani et al. 2017, arXiv:1704.00028, Eq. 3 (lambda = 10);
- R1 / R2: Mescheder et al. 2018, arXiv:1801.04406, Eq. 9; lazy regularization: Karras et al.
  2020, arXiv:1912.04958, Sec. 3.1;
- LeCam regularization: Tseng et al. 2021, arXiv:2104.03310 (the official code's form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.compat import BATCH_NORM
from genmodels.errors import InvalidValue, UserError

__all__ = [
    "d_loss_nonsaturating", "g_loss_nonsaturating", "g_loss_minimax", "d_loss_hinge", "g_loss_hinge",
    "d_loss_least_squares", "g_loss_least_squares", "d_loss_wasserstein", "g_loss_wasserstein",
    "d_loss_ragan", "g_loss_ragan", "d_loss_ralsgan", "g_loss_ralsgan", "AdversarialLoss",
    "gradient_penalty", "r1_penalty", "require_per_sample_critic", "clip_weights_", "LOSSES", "PROBABILITY_LOSSES",
    "lecam_penalty", "LeCamAnchors", "sum_over_ranks",
]


# -- losses -----------------------------------------------------------------------------------


def d_loss_nonsaturating(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """-log D(x) - log(1 - D(G(z))) (Eq. 1, D's half); ``real_target`` < 1 is one-sided label smoothing."""
    # BCE(l, t) = t * softplus(-l) + (1 - t) * softplus(l), computed stably.
    real = real_target * F.softplus(-real_logits) + (1 - real_target) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """-log D(G(z)): G maximizes log D(G(z)) instead of minimizing log(1 - D(G(z))) (Sec. 3)."""
    return F.softplus(-fake_logits).mean()


def g_loss_minimax(fake_logits: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """log(1 - D(G(z))): the generator's side of the original minimax game (saturates early)."""
    return -F.softplus(fake_logits).mean()


def d_loss_hinge(real_out: Tensor, fake_out: Tensor, real_target: float = 1.0) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; ``real_target`` shifts the real margin."""
    return F.relu(real_target - real_out).mean() + F.relu(1 + fake_out).mean()


def g_loss_hinge(fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """-E[D(G(z))]."""
    return -fake_out.mean()


def d_loss_least_squares(real_out: Tensor, fake_out: Tensor, real_target: float = 1.0) -> Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] with a = 0, b = ``real_target``."""
    return 0.5 * (real_out - real_target).pow(2).mean() + 0.5 * fake_out.pow(2).mean()


def g_loss_least_squares(fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """1/2 E[(D(G(z)) - c)^2] with c = 1."""
    return 0.5 * (fake_out - 1).pow(2).mean()


def d_loss_wasserstein(real_out: Tensor, fake_out: Tensor, real_target: float = 1.0) -> Tensor:
    """E[f(G(z))] - E[f(x)]: the critic maximizes the dual estimate of W(P_r, P_g)."""
    del real_target  # no labels to smooth in the dual objective
    return fake_out.mean() - real_out.mean()


def g_loss_wasserstein(fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """-E[f(G(z))]."""
    return -fake_out.mean()


def _bce(logits: Tensor, target: float) -> Tensor:
    """BCE(sigmoid(l), t) = t * softplus(-l) + (1 - t) * softplus(l), stably, averaged."""
    return (target * F.softplus(-logits) + (1 - target) * F.softplus(logits)).mean()


def d_loss_ragan(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """RaGAN (RaSGAN), D: 1/2 (-E log s(C(x_r) - E C(x_f)) - E log(1 - s(C(x_f) - E C(x_r))))."""
    real_rel, fake_rel = real_logits - fake_logits.mean(), fake_logits - real_logits.mean()
    return 0.5 * (_bce(real_rel, real_target) + _bce(fake_rel, 0.0))


def g_loss_ragan(fake_logits: Tensor, real_logits: Optional[Tensor] = None) -> Tensor:
    """RaGAN, G: the same with the roles swapped: 1/2 (-E log s(C(x_f) - E C(x_r)) - E log(1 - s(C(x_r) - E C(x_f))))."""
    if real_logits is None:
        raise ValueError("relativistic losses need D's outputs on real images in G's step")
    real_logits = real_logits.detach()
    return 0.5 * (_bce(fake_logits - real_logits.mean(), 1.0) + _bce(real_logits - fake_logits.mean(), 0.0))


def d_loss_ralsgan(real_out: Tensor, fake_out: Tensor, real_target: float = 1.0) -> Tensor:
    """RaLSGAN, D: 1/2 (E[(C(x_r) - E C(x_f) - 1)^2] + E[(C(x_f) - E C(x_r) + 1)^2])."""
    return 0.5 * ((real_out - fake_out.mean() - real_target).pow(2).mean() + (fake_out - real_out.mean() + 1).pow(2).mean())


def g_loss_ralsgan(fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
    """RaLSGAN, G: 1/2 (E[(C(x_f) - E C(x_r) - 1)^2] + E[(C(x_r) - E C(x_f) + 1)^2])."""
    if real_out is None:
        raise ValueError("relativistic losses need D's outputs on real images in G's step")
    real_out = real_out.detach()
    return 0.5 * ((fake_out - real_out.mean() - 1).pow(2).mean() + (real_out - fake_out.mean() + 1).pow(2).mean())


@dataclass(frozen=True)
class AdversarialLoss:
    """One entry of `LOSSES`: D's loss ``d(real_out, fake_out, real_target)``, G's ``g(fake_out, real_out)``.

    ``relativistic``: G's loss needs D's outputs on real images (the loop then computes them in G's
    step); ``logits``: D's outputs are logits (logged as probabilities).
    """

    d: Callable[[Tensor, Tensor, float], Tensor]
    g: Callable[[Tensor, Optional[Tensor]], Tensor]
    relativistic: bool = False
    logits: bool = False


#: The ``loss:`` option of every adversarial model: adding a loss is one entry here.
LOSSES: dict[str, AdversarialLoss] = {
    "nonsaturating": AdversarialLoss(d_loss_nonsaturating, g_loss_nonsaturating, logits=True),
    "minimax": AdversarialLoss(d_loss_nonsaturating, g_loss_minimax, logits=True),
    "hinge": AdversarialLoss(d_loss_hinge, g_loss_hinge),
    "least_squares": AdversarialLoss(d_loss_least_squares, g_loss_least_squares),
    "wasserstein": AdversarialLoss(d_loss_wasserstein, g_loss_wasserstein),
    "ragan": AdversarialLoss(d_loss_ragan, g_loss_ragan, relativistic=True, logits=True),
    "ralsgan": AdversarialLoss(d_loss_ralsgan, g_loss_ralsgan, relativistic=True),
}
#: Losses whose D output is a logit (logged as a probability).
PROBABILITY_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.logits)


# -- penalties --------------------------------------------------------------------------------


def _input_gradient(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """d(sum critic(x)) / dx, keeping the graph for backprop (call with autocast off)."""
    x = x.detach().float().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad


def _autocast_off(x: Tensor) -> torch.autocast:
    return torch.autocast(device_type=x.device.type, enabled=False)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor]:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on x_hat = eps x + (1 - eps) x_tilde, eps ~ U[0, 1] per sample.

    Returns ``(penalty, mean gradient norm)``; multiply the penalty by lambda (10 in the paper).
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device)
    with _autocast_off(real):
        x_hat = eps * real.detach().float() + (1 - eps) * fake.detach().float()
        norms = _input_gradient(critic, x_hat).flatten(1).norm(2, dim=1)
        return (norms - 1).pow(2).mean(), norms.detach().mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], images: Tensor) -> tuple[Tensor, Tensor]:
    """E[||grad_x D(x)||^2] on ``images`` (real images: R1; generated images: R2).

    Returns ``(penalty, mean gradient norm)``; the regularizer is gamma / 2 times the penalty.
    """
    with _autocast_off(images):
        squared = _input_gradient(critic, images).flatten(1).pow(2).sum(dim=1)
        return squared.mean(), squared.detach().sqrt().mean()


def require_per_sample_critic(discriminator: nn.Module, penalty: Optional[str]) -> None:
    """Refuse an input-gradient penalty (GP, R1, R2) on a discriminator containing BatchNorm.

    The penalties constrain the gradient of each sample's own output, d D(x_i) / d x_i. With
    BatchNorm in training mode D(x_i) also depends on every other x_j of the batch through the
    batch statistics, so the computed gradient is not the per-sample one and the penalty is
    silently wrong (Gulrajani et al. 2017, Sec. 4, "No critic batch normalization").
    """
    if penalty is None:
        return
    batch_norms = [name for name, module in discriminator.named_modules() if isinstance(module, BATCH_NORM)]
    if batch_norms:
        raise UserError(
            f"penalty {penalty!r} needs a discriminator without BatchNorm (found {type(discriminator).__name__}.{batch_norms[0]}): "
            "the penalty is per sample and BatchNorm couples the samples; use layer/instance normalization or none, or set penalty: null"
        )


@torch.no_grad()
def clip_weights_(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place (WGAN, Algorithm 1, line 7)."""
    for p in module.parameters():
        p.clamp_(-clip_value, clip_value)


# -- LeCam regularization ---------------------------------------------------------------------


def sum_over_ranks(x: Tensor) -> Tensor:
    """``x`` summed over the DDP processes (``x`` itself outside DDP); every rank must call it."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x)
    return x


def lecam_penalty(real_out: Tensor, fake_out: Tensor, anchor_real: Tensor, anchor_fake: Tensor) -> Tensor:
    """E[relu(D(x) - alpha_F)^2] + E[relu(alpha_R - D(G(z)))^2] (Tseng et al. 2021, arXiv:2104.03310).

    alpha_R, alpha_F are moving averages of D's mean output on real and fake images. The paper's
    Eq. 3 squares the plain differences; the official code (google/lecam-gan, and StudioGAN) keeps
    only the side where a real output exceeds the fake anchor (or a fake output falls below the
    real anchor), which is the behaviour used here.
    """
    real_out, fake_out = real_out.float(), fake_out.float()
    return F.relu(real_out - anchor_fake).pow(2).mean() + F.relu(anchor_real - fake_out).pow(2).mean()


class LeCamAnchors(nn.Module):
    """The EMA anchors alpha_R, alpha_F of LeCam, as buffers (checkpointed, equal on every rank).

    Defaults are google/lecam-gan's BigGAN CIFAR run (third_party/utils.py `ema_losses`,
    train_fns.py): anchors start at 1000, decay 0.9, the anchors are plain copies of the batch means
    (decay 0) while the generator iteration is below `start_iteration` (1000), and the term counts
    only once it is above it. A generator iteration is `d_steps_per_iteration` calls (the official
    loop runs 4 D steps per `itr`). `init=0, start_iteration=0` gives a plain EMA applied from the
    first step (StudioGAN's form with its decay).
    """

    def __init__(self, decay: float = 0.9, init: float = 1000.0, start_iteration: int = 1000,
                 d_steps_per_iteration: int = 1) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise InvalidValue(f"model option lecam_decay={decay!r} is invalid: must be in [0, 1)")
        if start_iteration < 0 or d_steps_per_iteration < 1:
            raise InvalidValue(f"LeCam start_iteration={start_iteration!r} must be >= 0 and "
                             f"d_steps_per_iteration={d_steps_per_iteration!r} >= 1")
        self.decay, self.start_iteration = decay, start_iteration
        self.d_steps_per_iteration = d_steps_per_iteration
        self.register_buffer("real", torch.full((), float(init)))
        self.register_buffer("fake", torch.full((), float(init)))
        # D steps seen so far: the generator iteration (official `state_dict['itr']`) derives from it.
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Checkpoints written before the step counter existed resume as if past the start.
        state_dict.setdefault(prefix + "steps", torch.tensor(self.start_iteration * self.d_steps_per_iteration + 1))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def iteration(self) -> int:
        """The generator iteration the current D step belongs to (0-based)."""
        return int(self.steps) // self.d_steps_per_iteration

    @torch.no_grad()
    def update(self, real_out: Tensor, fake_out: Tensor) -> None:
        """alpha <- d * alpha + (1 - d) * mean output (d = 0 before `start_iteration`), over every rank's batch."""
        stats = torch.stack([real_out.detach().float().sum(), fake_out.detach().float().sum(),
                             torch.tensor(float(real_out.numel()), device=real_out.device),
                             torch.tensor(float(fake_out.numel()), device=real_out.device)])
        stats = sum_over_ranks(stats)
        decay = 0.0 if self.iteration < self.start_iteration else self.decay
        self.real.lerp_(stats[0] / stats[2], 1 - decay)
        self.fake.lerp_(stats[1] / stats[3], 1 - decay)

    def forward(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """Update the anchors with this batch, then the penalty against them (the official order).

        Zero (no gradient) while the generator iteration is not above `start_iteration`
        (`state_dict['itr'] > ema_losses.start_itr` in the official loop).
        """
        self.update(real_out, fake_out)
        active = self.iteration > self.start_iteration or self.start_iteration == 0
        self.steps += 1
        if not active:
            return (real_out.float().sum() + fake_out.float().sum()) * 0.0
        return lecam_penalty(real_out, fake_out, self.real, self.fake)
