"""Latent spaces of trained models: codes for a seed, truncation, interpolation, principal directions.

Apps reach a model's latent space through the capabilities of `genmodels.protocols`, so a model
takes part without importing anything from here. `latent_space(model)` checks, in this order:

1. **W space** (`StyleBased` and `LatentGenerator`): ``mapping(z[, condition]) -> w`` (n, d),
   ``synthesis(w) -> images`` and ``sample_latent(n, generator) -> z``. Truncation is the model's
   ``truncate(w, psi)``: ``mean_w + psi * (w - mean_w)`` (Karras et al. 2019, arXiv:1812.04948,
   Sec. 2 and Appendix B). Edits and interpolation are linear in W.
2. **Z space of a generator** (`LatentGenerator`: the `LatentGAN` family and conditional GANs):
   codes are decoded by the model's ``sample_from(z, condition=...)``, the images its ``sample``
   draws with those latents, so a conditional generator is driven through its public contract
   whatever its network's signature, and the images of a seed equal
   ``model.sample(n, generator=seeded)``.
3. **Z space of a decoder** (`Autoencoder`): ``decode(z, labels)`` and
   ``latent_gaussian() -> (mean, std)``; codes are standardized, z = mean + std * code.

Truncation in Z (models without W) is BigGAN's truncation trick (Brock et al. 2018,
arXiv:1809.11096, Sec. 3.1): every component of a code outside [-psi, psi] is *resampled* from the
prior restricted to that interval (by inverse CDF, in one pass). Components inside are kept, so
nudging psi changes a seed's image only a little. Smaller psi: more typical, less varied images;
psi >= 4 changes almost nothing. In W, psi is the factor toward the mean (1: none, 0: the mean).

Interpolation is spherical in Z (a Gaussian's mass lies near a sphere, so a straight line crosses
improbable codes near the origin; White 2016, arXiv:1609.04468) and linear in W.

Principal directions follow GANSpace (Härkönen et al. 2020, arXiv:2004.02546): PCA of sampled w
for W models. For Z models GANSpace takes PCA of features computed from sampled z and carries the
components back into Z by least-squares regression (its BigGAN recipe); here the features are the
generated images, the one layer every model exposes (GANSpace uses an early layer of BigGAN).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
from torch import Tensor

from genmodels.protocols import Autoencoder, LatentGenerator, StyleBased
from genmodels.errors import InvalidValue

__all__ = [
    "MAX_SEED",
    "LatentSpace",
    "Directions",
    "latent_space",
    "seeded_generator",
    "slerp",
    "truncate_prior",
]

#: Largest seed the apps accept (fits JSON numbers, number inputs and every RNG).
MAX_SEED = 2**31 - 1


def seeded_generator(seed: int, device: Any = "cpu") -> torch.Generator:
    """A generator seeded with ``seed`` on ``device``; the seed must be in [0, MAX_SEED]."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidValue(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Pure functions on codes


def truncate_prior(z: Tensor, psi: float, generator: Optional[torch.Generator] = None, distribution: str = "normal") -> Tensor:
    """Resample the components of prior draws ``z`` outside [-psi, psi] from the truncated prior.

    ``distribution`` is ``normal`` (N(0, 1) components) or ``uniform`` (U[-1, 1]). The uniform
    numbers are always drawn, whatever ``z`` holds, so the generator advances the same way for
    every seed.
    """
    if not psi > 0:
        raise InvalidValue(f"truncation psi must be > 0, got {psi}")
    u = torch.rand(z.shape, generator=generator, device=z.device, dtype=z.dtype)
    if distribution == "uniform":
        bound = min(float(psi), 1.0)
        replacement = (2 * u - 1) * bound
    else:
        # Inverse CDF of N(0, 1) restricted to [-psi, psi]: Phi^-1(Phi(-psi) + u (Phi(psi) - Phi(-psi))).
        low = torch.special.ndtr(torch.tensor(-float(psi), dtype=torch.float64))
        high = 1 - low
        replacement = torch.special.ndtri(low + u.double() * (high - low)).to(z.dtype)
    return torch.where(z.abs() > psi, replacement, z)


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (linear where they are parallel)."""
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    omega = (a_unit * b_unit).sum(1, keepdim=True).clamp(-1, 1).acos()
    sin_omega = omega.sin()
    parallel = sin_omega.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe
    return torch.where(parallel, (1 - t) * a + t * b, spherical)


@dataclass
class Directions:
    """Principal directions of a latent space.

    Attributes:
        vectors: ``(k, d)`` unit vectors in the code space.
        scales: ``(k,)`` standard deviation of the codes along each vector (slider unit).
        explained: ``(k,)`` share of the variance of the PCA features each component explains.
    """

    vectors: Tensor
    scales: Tensor
    explained: Tensor

    def edit(self, codes: Tensor, amounts: list[float]) -> Tensor:
        """``codes + sum_i amounts[i] * scales[i] * vectors[i]`` (amounts in standard deviations)."""
        if len(amounts) > len(self.vectors):
            raise InvalidValue(f"{len(amounts)} amounts for {len(self.vectors)} directions")
        shift = torch.zeros_like(codes[0])
        for amount, scale, vector in zip(amounts, self.scales, self.vectors):
            shift = shift + float(amount) * scale.to(codes) * vector.to(codes)
        return codes + shift


def _pca(features: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """(coordinates (N, k), components (k, D), explained variance ratio (k,)) of centred features."""
    centred = features.double() - features.double().mean(0)
    u, s, vt = torch.linalg.svd(centred, full_matrices=False)
    k = min(k, s.numel())
    variance = s.pow(2)
    return u[:, :k] * s[:k], vt[:k], variance[:k] / variance.sum().clamp_min(1e-30)


# ---------------------------------------------------------------------------------------------
# Latent spaces


class LatentSpace:
    """Codes of a model's latent space and the map from codes to images (see the module docstring).

    Attributes:
        kind: ``"z"`` or ``"w"``, the space codes live in (where edits and interpolation happen).
    """

    kind = "z"

    def __init__(self, model: Any) -> None:
        self.model = model
        # Decoding Z of a generator holds the given latents on the model for the duration of a
        # call (`sample_from`); callers on several threads (the HTTP API) share one model.
        self.lock = threading.RLock()

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    # -- what each kind of space defines ------------------------------------------------------
    def prior(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` draws z of the model's prior."""
        raise NotImplementedError

    def to_codes(
        self, z: Tensor, condition: Any = None, truncation: Optional[float] = None, generator: Optional[torch.Generator] = None
    ) -> Tensor:
        """Prior draws -> codes of this space (mapped, then truncated when ``truncation`` is set)."""
        return z if truncation is None else truncate_prior(z, truncation, generator, self._distribution())

    def decode(self, codes: Tensor, condition: Any = None) -> Tensor:
        """Codes -> images ``(n, C, H, W)`` in [-1, 1]."""
        raise NotImplementedError

    def interpolate(self, a: Tensor, b: Tensor, t: float) -> Tensor:
        """The point at ``t`` in [0, 1] between codes ``a`` and ``b`` (spherical in Z)."""
        return slerp(a, b, t)

    def _distribution(self) -> str:
        # getattr: LatentGAN's prior (normal/uniform); other latent models draw from N(0, I).
        return str(getattr(self.model, "latent_distribution", "normal"))

    # -- shared -------------------------------------------------------------------------------
    @torch.no_grad()
    def codes(self, n: int, seed: int, condition: Any = None, truncation: Optional[float] = None) -> Tensor:
        """The ``n`` codes of ``seed``: deterministic for (seed, n, condition, truncation)."""
        generator = seeded_generator(seed, self.device)
        z = self.prior(n, generator)
        return self.to_codes(z, condition, truncation, generator)

    @torch.no_grad()
    def directions(self, k: int = 5, num_samples: int = 512, seed: int = 0, condition: Any = None, batch_size: int = 128) -> Directions:
        """The ``k`` principal directions of the codes (GANSpace; see the module docstring)."""
        codes = self.codes(num_samples, seed, condition)
        features = torch.cat(
            [self.decode(chunk, _slice(condition, i, len(chunk))).flatten(1).cpu() for i, chunk in _chunks(codes, batch_size)]
        )
        coordinates, _, explained = _pca(features, k)
        # Regress the codes on the PCA coordinates: each row of V is the code-space direction that
        # moves the features along one principal component (GANSpace, Sec. 2).
        regression = torch.linalg.lstsq(coordinates, codes.cpu().double() - codes.cpu().double().mean(0)).solution
        vectors = regression / regression.norm(dim=1, keepdim=True).clamp_min(1e-12)
        scales = (codes.cpu().double() @ vectors.T).std(0)
        return Directions(vectors.float(), scales.float(), explained.float())


class WSpace(LatentSpace):
    """W of a mapping + synthesis model: truncation toward the mean w, linear edits."""

    kind = "w"

    def prior(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        return self.model.sample_latent(n, generator)

    def to_codes(
        self, z: Tensor, condition: Any = None, truncation: Optional[float] = None, generator: Optional[torch.Generator] = None
    ) -> Tensor:
        w = self.model.mapping(z) if condition is None else self.model.mapping(z, condition)
        if truncation is None:
            return w
        return self.model.truncate(w, truncation)

    def decode(self, codes: Tensor, condition: Any = None) -> Tensor:
        return self.model.synthesis(codes)

    def interpolate(self, a: Tensor, b: Tensor, t: float) -> Tensor:
        return (1 - t) * a + t * b

    @torch.no_grad()
    def directions(self, k: int = 5, num_samples: int = 2048, seed: int = 0, condition: Any = None, batch_size: int = 128) -> Directions:
        w = self.codes(num_samples, seed, condition).cpu()
        coordinates, components, explained = _pca(w, k)
        return Directions(components.float(), coordinates.std(0).float(), explained.float())


class GeneratorZSpace(LatentSpace):
    """Z of a generator model: decoded through the model's own ``sample`` with z held fixed."""

    def prior(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        return self.model.sample_latent(n, generator)

    def decode(self, codes: Tensor, condition: Any = None) -> Tensor:
        # A model that draws its own condition when given none (attribute models) draws it from
        # a fixed seed, so decoding stays a function of the codes.
        generator = None if condition is not None else torch.Generator(device=self.device).manual_seed(0)
        with self.lock:
            return self.model.sample_from(codes, condition=condition, generator=generator)


class DecoderZSpace(LatentSpace):
    """Standardized Z of a decoder: z = mean + std * code, decoded with ``decode(z, labels)``."""

    def prior(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        # Drawn as the autoencoders' own `sample` draws it, so a seed gives the same images.
        return torch.randn(n, int(self.model.latent_dim), generator=generator, device=self.device)

    def _distribution(self) -> str:
        return "normal"

    def decode(self, codes: Tensor, condition: Any = None) -> Tensor:
        mean, std = self.model.latent_gaussian()
        labels = condition
        if labels is None:
            labels = self.model.default_condition(codes.shape[0])
        return self.model.decode(mean + std * codes, labels)


def latent_space(model: Any) -> Optional[LatentSpace]:
    """The latent space of ``model`` through the hooks of the module docstring; None if it has none."""
    if isinstance(model, StyleBased) and isinstance(model, LatentGenerator):
        return WSpace(model)
    if isinstance(model, LatentGenerator):
        return GeneratorZSpace(model)
    if isinstance(model, Autoencoder):
        return DecoderZSpace(model)
    return None


def _chunks(tensor: Tensor, size: int) -> Iterator[tuple[int, Tensor]]:
    for start in range(0, tensor.shape[0], size):
        yield start, tensor[start : start + size]


def _slice(condition: Any, start: int, length: int) -> Any:
    """The part of a per-sample condition for rows ``start:start+length`` (ints pass through)."""
    if isinstance(condition, Tensor) and condition.ndim > 0:
        return condition[start : start + length]
    return condition
