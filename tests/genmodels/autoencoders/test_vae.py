"""VAE: the paper's pieces (analytic KL, reparameterization), the discretized likelihood, β and
warm-up, separate loss curves, the conditional option, and the ELBO against independent pixels."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch.distributions import Normal, kl_divergence

from datamodules import DigitsDataModule
from genmodels import VAE
from genmodels.autoencoders.baselines import independent_pixel_bits_per_dim
from genmodels.autoencoders.vae import (
    bernoulli_log_likelihood,
    bits_per_dim,
    discretized_gaussian_log_likelihood,
    gaussian_kl,
    to_pixel_grid,
)
from tests.genmodels.autoencoders.helpers import digit_images, tiny_vae, train

LEVELS = (torch.arange(256, dtype=torch.float32) / 127.5 - 1).view(256, 1, 1, 1)


def test_analytic_kl_matches_torch_distributions():
    mean, log_variance = torch.randn(5, 3), torch.randn(5, 3)
    q, p = Normal(mean, (0.5 * log_variance).exp()), Normal(torch.zeros(3), torch.ones(3))
    assert torch.allclose(gaussian_kl(mean, log_variance), kl_divergence(q, p).sum(1), atol=1e-5)
    assert torch.equal(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))


@pytest.mark.parametrize("mean,log_scale", [(0.3, -1.0), (-2.0, -3.0), (0.999, -6.0), (0.5, 1.0), (1.5, -7.0), (-0.2, -7.0)])
def test_discretized_gaussian_is_a_probability_mass_on_the_256_levels(mean, log_scale):
    log_p = discretized_gaussian_log_likelihood(LEVELS, torch.full_like(LEVELS, mean), torch.tensor(log_scale))
    assert torch.isfinite(log_p).all()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    # Against float64 CDF differences with the end bins open to -inf / +inf.
    normal = Normal(torch.tensor(mean, dtype=torch.float64), torch.tensor(log_scale, dtype=torch.float64).exp())
    x = LEVELS.double().flatten()
    upper, lower = normal.cdf(x + 1 / 255), normal.cdf(x - 1 / 255)
    upper[-1], lower[0] = 1.0, 0.0
    reference = upper - lower
    visible = reference > 1e-20
    assert torch.allclose(log_p.double()[visible], reference[visible].log(), atol=1e-3, rtol=1e-3)


def test_discretized_gaussian_gradients_stay_finite_far_in_the_tails():
    mean = torch.tensor([[-30.0, 30.0, 0.0]]).view(1, 3, 1, 1).expand(3, 3, 1, 1).clone().requires_grad_(True)
    log_scale = torch.full((3, 3, 1, 1), -7.0, requires_grad=True)
    x = torch.tensor([-1.0, 1.0, 0.5]).view(3, 1, 1, 1).expand(3, 3, 1, 1)
    discretized_gaussian_log_likelihood(x, mean, log_scale).sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_scale.grad).all()


def test_bits_per_dim_and_bernoulli_definitions():
    assert bits_per_dim(torch.tensor([-10 * math.log(2)]), 10).item() == pytest.approx(1.0)
    x, logits = torch.tensor([[[[-1.0, 1.0]]]]), torch.tensor([[[[0.0, 2.0]]]])
    expected = math.log(0.5) + math.log(torch.sigmoid(torch.tensor(2.0)).item())
    assert bernoulli_log_likelihood(x, logits).item() == pytest.approx(expected, abs=1e-6)
    assert torch.allclose(to_pixel_grid(torch.tensor([-1.0, 0.0, 1.0, 3.0])), torch.tensor([-1.0, 1 / 255, 1.0, 1.0]), atol=1e-6)


def test_reparameterization_is_differentiable_and_has_the_posterior_moments():
    mean = torch.tensor([[1.0, -2.0]], requires_grad=True).expand(20000, 2)
    log_variance = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True).expand(20000, 2)
    z = VAE.reparameterize(mean, log_variance, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.05)
    z.sum().backward()  # gradients reach the encoder outputs through z = mu + sigma * eps


def test_kl_weight_warms_up_linearly_to_beta():
    model = tiny_vae(beta=4.0, kl_warmup_iterations=100)
    weights = []
    for iteration in (0, 50, 100, 400):
        model.iteration = iteration
        weights.append(model.kl_weight())
    assert weights == [0.0, 2.0, 4.0, 4.0]
    assert tiny_vae(beta=2.0).kl_weight() == 2.0
    with pytest.raises(ValueError, match="beta"):
        tiny_vae(beta=-1.0)
    with pytest.raises(ValueError, match="likelihood"):
        tiny_vae(likelihood="laplace")


def test_reconstruction_and_kl_are_logged_as_separate_curves(tmp_path):
    torch.manual_seed(0)
    model = tiny_vae(beta=0.5, kl_warmup_iterations=4)
    train(model, DigitsDataModule(image_size=16, batch_size=16), 4, tmp_path, logger=CSVLogger(tmp_path))
    import csv

    rows = [r for r in csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))) if r.get("train/loss")]
    assert len(rows) == 4
    for row in rows:
        reconstruction, kl, beta = float(row["train/reconstruction"]), float(row["train/kl"]), float(row["train/beta"])
        assert float(row["train/loss"]) == pytest.approx(reconstruction + beta * kl, rel=1e-5)
        assert float(row["train/elbo"]) == pytest.approx(-(reconstruction + kl), rel=1e-5)
        assert kl > 0
    assert [float(r["train/beta"]) for r in rows] == [0.0, 0.125, 0.25, 0.375]  # 0.5 * iteration / 4


def test_importance_weighted_bound_is_at_least_the_elbo():
    torch.manual_seed(0)
    model = tiny_vae().eval()
    images, _ = digit_images(16)
    generator = torch.Generator().manual_seed(0)
    elbo = -model.negative_elbo(images, num_samples=16, generator=generator)
    iw = model.importance_weighted_log_likelihood(images, None, 16, generator)
    assert iw.mean() >= elbo.mean()


def test_samples_are_reproducible_and_leave_the_global_rng_alone():
    model = tiny_vae().eval()
    state = torch.get_rng_state()
    a = model.sample(6, generator=torch.Generator().manual_seed(1))
    b = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    assert a.shape == (6, 1, 16, 16) and a.min() >= -1 and a.max() <= 1
    bernoulli = tiny_vae(likelihood="bernoulli").eval()
    assert bernoulli.sample(2).shape == (2, 1, 16, 16) and not hasattr(bernoulli, "log_scale")
    per_channel = tiny_vae(decoder_scale="per_channel", image_shape=(3, 16, 16))
    assert per_channel.log_scale.shape == (3, 1, 1) and per_channel.decoder.body[-1].out_channels == 3
    assert tiny_vae(image_shape=(3, 16, 16)).decoder.body[-1].out_channels == 6  # mean and scale per pixel


def test_conditional_vae_decodes_the_requested_labels():
    torch.manual_seed(0)
    model = tiny_vae(num_classes=3).eval()
    z = torch.zeros(3, 4)
    decoded = model.decode(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(decoded[0], decoded[1])  # the label changes the image
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(model.sample(4, generator=g()), model.sample(4, condition=torch.tensor([0, 1, 2, 0]), generator=g()))
    with pytest.raises(ValueError, match=r"num_classes=3 needs 2 labels in 0\.\.2"):
        model.decode(torch.zeros(2, 4), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="pass labels"):
        model.encode(torch.zeros(1, 1, 16, 16))


def test_validation_elbo_improves_within_a_few_dozen_iterations(tmp_path):
    torch.manual_seed(0)
    model = tiny_vae(hidden_channels=(8, 16), latent_dim=8, lr=3e-3)
    dm = DigitsDataModule(image_size=16, batch_size=32)
    images, _ = digit_images(64)
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    before = -model.negative_elbo(images, generator=generator()).mean()
    train(model, dm, 60, tmp_path)
    after = -model.eval().negative_elbo(images, generator=generator()).mean()
    assert after > before + 0.1 * abs(before)


@pytest.mark.slow
def test_test_elbo_improves_and_beats_independent_pixel_baselines(tmp_path):
    """Digits at 16 px, 300 iterations: test bits/dim from the ELBO vs per-pixel models of the same data."""
    torch.manual_seed(0)
    dm = DigitsDataModule(image_size=16, batch_size=64)
    model = VAE(image_shape=(1, 16, 16), latent_dim=8, hidden_channels=(16, 32))
    initial = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path).test(model, dm, verbose=False)[0]["test/bits_per_dim"]
    trainer = train(model, dm, 300, tmp_path)
    final = trainer.test(model, dm, verbose=False)[0]["test/bits_per_dim"]
    baselines = independent_pixel_bits_per_dim(dm._dataset("train").images, dm._dataset("test").images)
    print(f"VAE test bits/dim: {initial:.3f} -> {final:.3f}; independent pixels: {baselines}")
    assert final < initial - 1.0
    assert final < baselines["histogram"] - 0.2 and final < baselines["discretized_gaussian"] - 0.5
