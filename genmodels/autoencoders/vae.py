"""VAE: Auto-Encoding Variational Bayes (Kingma & Welling 2013, arXiv:1312.6114), with the β-VAE
weight (Higgins et al. 2017, "beta-VAE: Learning basic visual concepts with a constrained
variational framework", ICLR), KL warm-up (Bowman et al. 2015, arXiv:1511.06349; Sønderby et al.
2016, arXiv:1602.02282) and a conditional option (Sohn, Lee & Yan 2015, "Learning structured
output representation using deep conditional generative models", NeurIPS).

The model, in the paper's terms: a Gaussian prior p(z) = N(0, I); a Gaussian recognition model
(encoder) q_phi(z|x) = N(mu, diag(sigma^2)); a decoder p_theta(x|z). Training maximises the SGVB
estimator of the evidence lower bound (eq. 10), with one sample of the reparameterization
z = mu + sigma * eps, eps ~ N(0, I) (Sec. 2.4) and the KL term in closed form (Appendix B):

    ELBO(x) = E_q[log p_theta(x|z)] - KL(q_phi(z|x) || p(z)),
    -KL = 1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).

The loss is ``reconstruction + beta_t * KL`` with ``beta_t = beta * min(1, iteration / warm-up)``;
evaluation always reports the true bound (beta = 1).

Decoder likelihoods (``likelihood``), on images x in [-1, 1] that come from 8-bit pixels:

- ``discretized_gaussian`` (default): each pixel's 256 levels get the mass of N(mu, s^2) over
  their bin of width 2/255, the two end bins extended to -inf / +inf (the discretized decoder of
  Ho et al. 2020, arXiv:2006.11239, eq. 13, with a Gaussian CDF as in PixelCNN++'s logistic one).
  The decoder outputs the means and, with ``decoder_scale = "per_pixel"`` (default), a log-scale per
  pixel, like the paper's Gaussian decoder (Appendix C.2: the MLP outputs mu and log sigma^2);
  with ``"per_channel"`` the scale is one learned parameter per channel (the shared variance of
  the sigma-VAE, Rybkin et al. 2021, arXiv:2006.13202). The discretization bounds every
  probability by 1, so a per-pixel scale cannot collapse into an unbounded density. This is a probability *mass* function on
  8-bit images, so the ELBO bounds log P(x) and bits/dim = -ELBO / (C*H*W * ln 2) is comparable
  with any other discrete model of the same pixels (PixelCNN, flows with dequantization, an
  independent-pixel model).
- ``bernoulli``: p(x|z) = prod Bernoulli((x+1)/2; sigmoid(logits)), i.e. BCE with logits on
  targets in [0, 1] (the paper's MNIST decoder). It is a likelihood only for binary images: on
  grey levels the "ELBO" is a cross-entropy bound, so no bits/dim is reported for it.

Logged: ``train/{loss,reconstruction,kl,elbo,beta}`` (reconstruction and KL as separate curves,
in nats per image), ``val/...`` and ``test/{elbo,reconstruction,kl,bits_per_dim}``; with
``eval_importance_samples = k > 0`` also the importance-weighted bound of Burda et al. 2015
(arXiv:1509.00519), ``test/log_likelihood_iw`` and ``test/bits_per_dim_iw``. Evaluation draws its
posterior noise from a generator seeded per batch, so it never advances the training RNG.

`sample` decodes z ~ N(0, I) and returns the decoder's mean image (clamped to [-1, 1]), not a
noisy draw from p(x|z), as is usual for image VAEs.

Not implemented: free bits, learned or mixture priors, hierarchical latents, normalizing-flow
posteriors.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.autoencoders.autoencoder import ConvAutoEncoderBase, ConvDecoder, ConvEncoder
from genmodels.errors import InvalidValue

__all__ = [
    "VAE",
    "gaussian_kl",
    "discretized_gaussian_log_likelihood",
    "bernoulli_log_likelihood",
    "bits_per_dim",
    "to_pixel_grid",
]

LIKELIHOODS = ("discretized_gaussian", "bernoulli")
_HALF_BIN = 1.0 / 255.0  # half the width of one of 256 levels spread over [-1, 1]
_LOG_SCALE_MIN = -7.0  # s >= 1e-3, a tenth of a bin: sharper than that only overfits


def gaussian_kl(mean: Tensor, log_variance: Tensor) -> Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) per row, in nats (Kingma & Welling, Appendix B)."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).sum(dim=1)


def to_pixel_grid(images: Tensor) -> Tensor:
    """Snap images in [-1, 1] to the 256 levels of 8-bit pixels, ``k / 127.5 - 1``."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012); -inf at 0 is clamped."""
    x = x.clamp_max(-1e-12)
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) per image of a per-pixel Gaussian discretized into the 256 bins of [-1, 1].

    Bin k (``x = k / 127.5 - 1``) gets the mass of N(mean, exp(log_scale)^2) on
    ``[x - 1/255, x + 1/255]``; bin 0 extends to -inf and bin 255 to +inf, so the 256 masses sum to 1.

    Args:
        x: images (n, C, H, W) on the 256-level grid of [-1, 1] (see `to_pixel_grid`).
        mean: decoder means, same shape; any real value.
        log_scale: log standard deviations, broadcastable to ``x``.

    Returns:
        (n,) log-probabilities in nats, summed over pixels.
    """
    x, mean = x.float(), mean.float()
    inv_scale = torch.exp(-log_scale.float())
    upper = (x - mean + _HALF_BIN) * inv_scale  # standardized bin edges
    lower = (x - mean - _HALF_BIN) * inv_scale
    # log(Phi(upper) - Phi(lower)) without cancellation: work in the lower tail by symmetry
    # (Phi(u) - Phi(l) = Phi(-l) - Phi(-u)), where log_ndtr is accurate. Two log_ndtr calls serve
    # all three cases (it dominates the cost): with (hi, lo) = (upper, lower), or (-lower, -upper)
    # when flipped, log Phi(upper) and log Phi(-lower) are log_hi or log(1 - exp(log_lo)).
    flip = lower > 0
    log_hi = torch.special.log_ndtr(torch.where(flip, -lower, upper))
    log_lo = torch.special.log_ndtr(torch.where(flip, -upper, lower))
    interior = log_hi + _log1mexp(log_lo - log_hi)
    complement = _log1mexp(log_lo)
    first_bin = torch.where(flip, complement, log_hi)  # log P(X <= -1 + 1/255)
    last_bin = torch.where(flip, log_hi, complement)  # log P(X >= 1 - 1/255)
    log_p = torch.where(x < -1 + _HALF_BIN, first_bin, torch.where(x > 1 - _HALF_BIN, last_bin, interior))
    return log_p.flatten(1).sum(1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """Sum over pixels of log Bernoulli((x + 1) / 2; sigmoid(logits)), i.e. minus BCE with logits, per image."""
    targets = (x.float() + 1) / 2
    return -F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none").flatten(1).sum(1)


def bits_per_dim(log_likelihood: Tensor, num_dims: int) -> Tensor:
    """Negative log-likelihood in nats per image -> bits per sub-pixel."""
    return -log_likelihood / (num_dims * math.log(2))


class VAE(ConvAutoEncoderBase):
    """Variational autoencoder with a convolutional encoder/decoder (see the module docstring).

    Args:
        image_shape: ``(C, H, W)``, square, side divisible by ``2 ** len(hidden_channels)``; linked
            from the datamodule.
        latent_dim: size of z (2 gives a decodable latent map).
        hidden_channels: channels of the encoder's stride-2 convolutions (mirrored by the decoder).
        likelihood: ``discretized_gaussian`` or ``bernoulli`` (BCE with logits).
        decoder_scale: scale of the discretized Gaussian: ``per_pixel`` (decoded with the mean) or
            ``per_channel`` (a learned parameter).
        beta: weight of the KL term (1 = the ELBO; > 1 = β-VAE).
        kl_warmup_iterations: the KL weight rises linearly from 0 to ``beta`` over this many
            iterations (0 = no warm-up).
        num_classes: 0 = unconditional; K > 0 = conditional VAE on labels 0..K-1: q(z|x, y) and
            p(x|z, y) see a one-hot y, the prior stays N(0, I).
        eval_importance_samples: k > 0 adds the k-sample importance-weighted bound to ``test/``.
        init_log_scale: initial log standard deviation of the ``per_channel`` scale, in units of
            [-1, 1] pixels.
        lr, betas, weight_decay: Adam(W) settings.

    Example:
        >>> model = VAE(**VAE.tiny())
        >>> model.sample(3).shape
        torch.Size([3, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 16,
        hidden_channels: Sequence[int] = (32, 64, 128),
        likelihood: Literal["discretized_gaussian", "bernoulli"] = "discretized_gaussian",
        decoder_scale: Literal["per_pixel", "per_channel"] = "per_pixel",
        beta: float = 1.0,
        kl_warmup_iterations: int = 0,
        num_classes: int = 0,
        eval_importance_samples: int = 0,
        init_log_scale: float = -1.0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(image_shape, latent_dim, hidden_channels, num_classes, lr, betas, weight_decay)
        _check_vae_options(likelihood, decoder_scale, beta, kl_warmup_iterations, eval_importance_samples)
        self.save_hyperparameters()
        self.likelihood, self.beta = likelihood, float(beta)
        self.per_pixel_scale = likelihood == "discretized_gaussian" and decoder_scale == "per_pixel"
        self.kl_warmup_iterations, self.eval_importance_samples = kl_warmup_iterations, eval_importance_samples
        self.num_dims = math.prod(self.image_shape)
        # The encoder outputs (mu, log sigma^2) of q(z|x): 2 * latent_dim numbers.
        self.encoder = ConvEncoder(self.image_shape, self.hidden_channels, 2 * self.latent_dim, self.num_classes)
        channels = self.image_shape[0]
        self.decoder = ConvDecoder(
            self.image_shape, self.hidden_channels, self.latent_dim, self.num_classes,
            out_channels=2 * channels if self.per_pixel_scale else channels,
        )
        if likelihood == "discretized_gaussian" and not self.per_pixel_scale:
            self.log_scale = nn.Parameter(torch.full((self.image_shape[0], 1, 1), float(init_log_scale)))
        self._eval_seed = 4321

    # -- the paper's pieces ---------------------------------------------------------------------
    def posterior(self, images: Tensor, labels: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x): mean and log-variance, each (n, latent_dim)."""
        self.check_images(images)
        mean, log_variance = self.encoder(images, self.one_hot(labels, images.shape[0])).float().chunk(2, dim=1)
        return mean, log_variance

    @staticmethod
    def reparameterize(mean: Tensor, log_variance: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Sec. 2.4): a sample differentiable in (mu, sigma)."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_variance) * eps

    def log_likelihood(self, images: Tensor, decoder_output: Tensor) -> Tensor:
        """log p(x|z) per image (n,), in nats."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(images, decoder_output)
        if self.per_pixel_scale:
            mean, log_scale = decoder_output.chunk(2, dim=1)
        else:
            mean, log_scale = decoder_output, self.log_scale
        return discretized_gaussian_log_likelihood(to_pixel_grid(images), mean, log_scale.clamp_min(_LOG_SCALE_MIN))

    def elbo_terms(
        self, images: Tensor, labels: Optional[Tensor] = None, generator: Optional[torch.Generator] = None
    ) -> tuple[Tensor, Tensor]:
        """One-sample estimates of (log p(x|z), KL(q(z|x) || p(z))) per image, in nats."""
        mean, log_variance = self.posterior(images, labels)
        z = self.reparameterize(mean, log_variance, generator)
        output = self.decoder(z, self.one_hot(labels, images.shape[0]))
        return self.log_likelihood(images, output), gaussian_kl(mean, log_variance)

    def kl_weight(self) -> float:
        """beta_t: beta scaled by the linear KL warm-up at the current iteration."""
        if self.kl_warmup_iterations <= 0:
            return self.beta
        return self.beta * min(1.0, self.iteration / self.kl_warmup_iterations)

    # -- training and evaluation ----------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        images, labels = self._batch(batch)
        log_px, kl = self.elbo_terms(images, labels)
        reconstruction, kl = -log_px.mean(), kl.mean()
        beta = self.kl_weight()
        loss = reconstruction + beta * kl
        self.log_train({
            "train/loss": loss.detach(),
            "train/reconstruction": reconstruction.detach(),
            "train/kl": kl.detach(),
            "train/elbo": (-(reconstruction + kl)).detach(),
            "train/beta": torch.tensor(beta),
        })
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        images, labels = self._batch(batch)
        generator = torch.Generator(device=self.device).manual_seed(self._eval_seed + batch_idx)
        log_px, kl = self.elbo_terms(images, labels, generator)
        elbo = log_px - kl
        logs = {f"{stage}/elbo": elbo.mean(), f"{stage}/reconstruction": -log_px.mean(), f"{stage}/kl": kl.mean()}
        if self.likelihood == "discretized_gaussian":
            logs[f"{stage}/bits_per_dim"] = bits_per_dim(elbo, self.num_dims).mean()
            if stage == "test" and self.eval_importance_samples > 0:
                log_p = self.importance_weighted_log_likelihood(images, labels, self.eval_importance_samples, generator)
                logs["test/log_likelihood_iw"] = log_p.mean()
                logs["test/bits_per_dim_iw"] = bits_per_dim(log_p, self.num_dims).mean()
        self.log_dict(logs, batch_size=images.shape[0], sync_dist=True)

    @torch.no_grad()
    def negative_elbo(
        self,
        images: Tensor,
        labels: Optional[Tensor] = None,
        num_samples: int = 1,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """-ELBO per image (n,), in nats, averaged over ``num_samples`` posterior samples."""
        total = torch.zeros(images.shape[0], device=images.device)
        for _ in range(num_samples):
            log_px, kl = self.elbo_terms(images, labels, generator)
            total += kl - log_px
        return total / num_samples

    @torch.no_grad()
    def importance_weighted_log_likelihood(
        self, images: Tensor, labels: Optional[Tensor], k: int, generator: Optional[torch.Generator] = None
    ) -> Tensor:
        """The k-sample bound log 1/k sum_i p(x, z_i) / q(z_i|x) per image (Burda et al. 2015, eq. 8)."""
        mean, log_variance = self.posterior(images, labels)
        condition = self.one_hot(labels, images.shape[0])
        std = torch.exp(0.5 * log_variance)
        log_weights = []
        for _ in range(k):
            z = self.reparameterize(mean, log_variance, generator)
            log_px = self.log_likelihood(images, self.decoder(z, condition))
            log_pz = _standard_normal_log_density(z)
            log_qz = _standard_normal_log_density((z - mean) / std) - std.log().sum(1)
            log_weights.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.stack(log_weights), dim=0) - math.log(k)

    # -- the view API ---------------------------------------------------------------------------
    def encode(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """The posterior mean mu of q(z|x): the deterministic code."""
        return self.posterior(images, labels)[0]

    def decode(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """The mean image of p(x|z) in [-1, 1]."""
        output = self.decoder(z, self.one_hot(labels, z.shape[0])).float()
        if self.likelihood == "bernoulli":
            return 2 * torch.sigmoid(output) - 1
        return output[:, : self.image_shape[0]].clamp(-1, 1)  # the mean (a per-pixel scale follows it)

    def latent_gaussian(self) -> tuple[Tensor, Tensor]:
        """The prior's mean and standard deviation: 0 and 1."""
        return torch.zeros(self.latent_dim, device=self.device), torch.ones(self.latent_dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Decode z ~ N(0, I); ``condition`` = labels (n,) for a conditional model (default 0..K-1 repeated)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return self.decode(z, self.sample_labels(condition, n))

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size VAE (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=4, hidden_channels=(4, 8))


def _standard_normal_log_density(z: Tensor) -> Tensor:
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)


def _check_vae_options(likelihood: str, decoder_scale: str, beta: float, warmup: int, importance_samples: int) -> None:
    checks = [
        ("likelihood", likelihood, likelihood in LIKELIHOODS, f"one of {list(LIKELIHOODS)}"),
        ("decoder_scale", decoder_scale, decoder_scale in ("per_pixel", "per_channel"), "per_pixel or per_channel"),
        ("beta", beta, beta >= 0, ">= 0"),
        ("kl_warmup_iterations", warmup, warmup >= 0, ">= 0"),
        ("eval_importance_samples", importance_samples, importance_samples >= 0, ">= 0"),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be {allowed}")
