"""Controllable generation: move z along a classifier's gradient to raise or lower one score.

The generator is fixed; its latent code is optimized by gradient ascent on a classifier's score
for the target class or attribute, i.e. activation maximization through a generator (Nguyen et
al. 2016, arXiv:1605.09304; Plug & Play Generative Networks, Nguyen et al. 2017,
arXiv:1612.00005). Step t of `edit_latents`, per sample::

    u       = ± step_size * g_t / ||g_0||,   g_t = grad_z s_target(G(z_t))   (gradient ascent)
    d       = argmin_d |d - u|^2 + penalty * |drift_t + J_t d|^2             (with a penalty)
    z_{t+1} = z_t + d

where J_t is the Jacobian of the other scores at z_t and drift_t = s_others(z_t) - s_others(z_0).
The learning rate is set per sample by the first gradient, so the first step moves z by
``step_size`` whatever the scale of the classifier's logits; later steps shrink as the classifier
saturates (a target class reached, pixels at the tanh limits), rather than keeping their length
and chasing what little gradient is left, which is how fixed-length steps drift into adversarial
patterns. The penalty keeps the other scores at their starting values, so the edit changes the target rather
than everything the generator ties to it: d is the Gauss-Newton step of the objective
s_target - penalty * sum_{j != target} (s_j(G(z)) - s_j(G(z_0)))^2 around u, which, unlike plain
gradient steps on that objective, does not oscillate as the drift term stiffens. InterFaceGAN's
"conditional manipulation" (Shen et al. 2020, arXiv:1907.10786) reaches the same goal by
projecting linear attribute boundaries; the penalty works with any differentiable classifier.
With a class classifier, probabilities sum to one, so holding every other class fixed fights the
edit by construction: use the penalty with attribute classifiers.

Scores come from `genmodels.apps.scores` (log-probabilities for class classifiers, log-odds for
attribute classifiers). The generator is any model with a latent code: ``decode(z, condition)``
(`genmodels.ConditionalGAN`, VAEs) or a `genmodels.gans.LatentGAN` (GAN, DCGAN, WGAN, ...); the EMA
generator is used when there is one.

Command line (`genmodels.commands.control`)::

    genmodels control --ckpt runs/cgan/digits/checkpoints/last.ckpt --classifier lenet-digits.pt \\
        --target 3 --steps 8 --out grid.png [--penalty 1] [--lower] [--condition 5]

writes ``grid.png`` (one row per sample, one column per step, the start first) and ``grid.csv``
(mean scores per step). Not implemented: keeping z on the prior's shell (z may leave the typical
set on long edits), edits in intermediate (W) spaces.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from genmodels.apps.scores import Scorer
from genmodels.conditioning import Attributes, ClassLabels
from genmodels.images import uint8_grid
from genmodels.protocols import Autoencoder, LatentGenerator, class_count
from genmodels.errors import InvalidValue

__all__ = ["Edit", "edit_latents", "latent_decoder", "draw_latents", "model_condition", "write_steps_csv"]

Decoder = Callable[[Tensor], Tensor]


@dataclass
class Edit:
    """The path of an edit: every step's latents, images and scores (step 0 = the start)."""

    latents: Tensor  # (steps + 1, n, latent_dim)
    images: Tensor  # (steps + 1, n, C, H, W) in [-1, 1]
    scores: Tensor  # (steps + 1, n, K)
    target: int

    @property
    def target_scores(self) -> Tensor:
        """The target's score per step and sample, (steps + 1, n)."""
        return self.scores[:, :, self.target]

    def others_change(self) -> Tensor:
        """Mean |change| of the other scores from the start, per step, (steps + 1,)."""
        change = (self.scores - self.scores[:1]).abs()
        others = [j for j in range(self.scores.shape[2]) if j != self.target]
        return change[:, :, others].mean(dim=(1, 2)) if others else torch.zeros(self.scores.shape[0])

    def grid(self) -> Tensor:
        """uint8 (3, H', W') grid: one row per sample, one column per step."""
        steps = self.images.shape[0]
        return uint8_grid(self.images.transpose(0, 1).flatten(0, 1), nrow=steps)


def edit_latents(
    decode: Decoder,
    scorer: Scorer,
    z: Tensor,
    target: int,
    steps: int = 8,
    step_size: float = 0.5,
    lower: bool = False,
    penalty: float = 0.0,
) -> Edit:
    """Move ``z`` along the gradient of the target score (see the module docstring).

    Args:
        decode: z (n, d) -> images (n, C, H, W) in [-1, 1], differentiable (generator in eval mode).
        scorer: images -> scores (n, K).
        z: starting latents (n, d).
        target: the score column to raise (or lower).
        steps: gradient steps; the path has ``steps + 1`` points.
        step_size: distance z moves in the first step (without penalty); later steps follow the
            gradient's size.
        lower: decrease the target score instead.
        penalty: weight lambda of the squared change of the other scores (0: no penalty).
    """
    if steps < 1 or step_size <= 0 or penalty < 0:
        raise InvalidValue(f"need steps >= 1, step_size > 0 and penalty >= 0; got {steps}, {step_size}, {penalty}")
    sign = -1.0 if lower else 1.0
    latents, images, scores = [], [], []
    start: Optional[Tensor] = None
    first_norm: Optional[Tensor] = None
    with torch.enable_grad():
        for step in range(steps + 1):
            z = z.detach().requires_grad_(step < steps)
            x = decode(z)
            s = scorer(x)
            start = s.detach() if start is None else start
            latents.append(z.detach())
            images.append(x.detach())
            scores.append(s.detach())
            if step == steps:
                break
            jacobian = _jacobian(z, s, [target] if penalty == 0 else range(s.shape[1]))
            grad = jacobian[:, 0] if penalty == 0 else jacobian[:, target]
            first_norm = grad.norm(dim=1, keepdim=True).clamp_min(1e-12) if first_norm is None else first_norm
            ascent = sign * step_size * grad / first_norm
            z = z + (ascent if penalty == 0 else _held_step(ascent, jacobian, s.detach() - start, target, penalty))
    return Edit(torch.stack(latents), torch.stack(images), torch.stack(scores), target)


def _jacobian(z: Tensor, scores: Tensor, columns: Any) -> Tensor:
    """d scores[:, k] / dz for the given columns, (n, len(columns), d); samples are independent."""
    columns = list(columns)
    grads = [torch.autograd.grad(scores[:, k].sum(), z, retain_graph=i + 1 < len(columns))[0] for i, k in enumerate(columns)]
    return torch.stack(grads, dim=1)


def _held_step(ascent: Tensor, jacobian: Tensor, drift: Tensor, target: int, penalty: float) -> Tensor:
    """The step d minimizing |d - ascent|^2 + penalty * |drift + J d|^2 over the other scores.

    J is the Jacobian of the other scores and drift their change since the start: a Gauss-Newton
    step on the penalized objective. Plain gradient steps on the squared drift would oscillate,
    their size growing with the drift.
    """
    others = [k for k in range(jacobian.shape[1]) if k != target]
    if not others:
        return ascent
    j, drift = jacobian[:, others], drift[:, others]  # (n, K - 1, d), (n, K - 1)
    r = ascent - penalty * (j.transpose(1, 2) @ drift[..., None]).squeeze(-1)
    # (I + penalty J^T J)^-1 r by the Woodbury identity: a (K-1) x (K-1) solve instead of d x d.
    gram = j @ j.transpose(1, 2) + torch.eye(len(others), device=j.device) / penalty
    return r - (j.transpose(1, 2) @ torch.linalg.solve(gram, j @ r[..., None])).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# Models with a latent code


def latent_decoder(model: Any, condition: Any = None) -> Decoder:
    """z -> images of ``model`` (through its EMA generator when it has one), differentiable in z.

    Raises:
        ValueError: the model has no latent code to edit.
    """
    if isinstance(model, Autoencoder):
        return lambda z: model.decode(z, condition)
    if isinstance(model, LatentGenerator):
        return lambda z: model.sample_from(z, condition=condition)
    raise InvalidValue(f"{type(model).__name__} has no latent code z to edit (neither a GAN generator nor a decoder)")


def draw_latents(model: Any, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """z ~ p(z) of ``model``, (n, latent_dim)."""
    if isinstance(model, LatentGenerator):
        return model.sample_latent(n, generator)
    return torch.randn(n, model.latent_dim, generator=generator, device=model.device)


def model_condition(model: Any, spec: Optional[str], n: int, generator: Optional[torch.Generator] = None) -> Any:
    """The condition for ``n`` samples from a command-line spec, drawn when None (conditional models).

    ``spec`` is a class index for class-conditional models and ``name=value,...`` for attribute
    models (unnamed attributes 0).
    """
    # getattr: class-conditional GANs carry a Conditioning (labels or attributes); other models have none.
    conditioning = getattr(model, "conditioning", None)
    if conditioning is None and class_count(model) >= 2:
        conditioning = ClassLabels(model.num_classes)  # class-conditional models without a Condition (VAEs)
    if conditioning is None:
        if spec is not None:
            raise InvalidValue(f"{type(model).__name__} is unconditional; drop --condition")
        return None
    if spec is None:
        return conditioning.draw(n, generator, model.device)
    if isinstance(conditioning, ClassLabels):
        if not spec.strip().lstrip("-").isdigit():
            raise InvalidValue(f"--condition must be a class index 0..{conditioning.num_classes - 1}, got {spec!r}")
        return conditioning.check(int(spec), n, model.device)
    if isinstance(conditioning, Attributes):
        return conditioning.check(_parse_assignments(spec), n, model.device)
    raise InvalidValue(f"unsupported condition type {type(conditioning).__name__}")


def _parse_assignments(spec: str) -> dict[str, float]:
    values = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        try:
            values[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise InvalidValue(f"--condition expects name=value pairs separated by commas, got {item!r}") from None
    return values


# ---------------------------------------------------------------------------------------------
# Command line


def write_steps_csv(edit: Edit, scorer: Scorer, path: Path) -> Path:
    """Mean score per step and column, with the target's probability and the others' drift."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mean_scores = edit.scores.mean(dim=1)
    target_probability = scorer.probabilities(edit.scores)[:, :, edit.target].mean(dim=1)
    drift = edit.others_change()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "target_probability", "others_abs_change", *scorer.names])
        for step in range(mean_scores.shape[0]):
            row = [f"{v:.6g}" for v in (target_probability[step].item(), drift[step].item(), *mean_scores[step].tolist())]
            writer.writerow([step, *row])
    return path
