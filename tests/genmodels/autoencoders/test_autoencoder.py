"""AutoEncoder: reconstruction losses, shape errors, sampling from the fitted code Gaussian, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from datamodules import DigitsDataModule
from genmodels import AutoEncoder
from genmodels.autoencoders.autoencoder import conv_layout
from genmodels.checkpoints import load_model
from tests.genmodels.autoencoders.helpers import digit_images, tiny_ae, train


def test_reconstruction_losses_follow_their_definitions():
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    output = torch.randn(3, 1, 16, 16)
    mse = tiny_ae(reconstruction_loss="mse")
    assert torch.allclose(mse.reconstruction_loss_per_image(output, x), (torch.tanh(output) - x).pow(2).mean((1, 2, 3)))
    assert torch.allclose(mse.output_to_image(output), torch.tanh(output))
    bce = tiny_ae(reconstruction_loss="bce")
    expected = F.binary_cross_entropy_with_logits(output, (x + 1) / 2, reduction="none").mean((1, 2, 3))
    assert torch.allclose(bce.reconstruction_loss_per_image(output, x), expected)
    assert torch.allclose(bce.output_to_image(output), 2 * torch.sigmoid(output) - 1)
    with pytest.raises(ValueError, match="reconstruction_loss must be 'mse' or 'bce'"):
        tiny_ae(reconstruction_loss="l1")


def test_wrong_image_size_is_a_clear_error():
    assert conv_layout((1, 28, 28), (8, 8)) == 7 and conv_layout((3, 64, 64), (4, 4, 4, 4)) == 4
    with pytest.raises(ValueError, match=r"image size 28 is not divisible by 2\^3 = 8.*image_size"):
        AutoEncoder(image_shape=(1, 28, 28), hidden_channels=(4, 8, 16))
    with pytest.raises(ValueError, match="square"):
        AutoEncoder(image_shape=(1, 16, 32))
    model = tiny_ae()
    with pytest.raises(ValueError, match=r"built for images of shape \(1, 16, 16\).*got a batch of shape \(2, 1, 32, 32\)"):
        model.reconstruct(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="latent_dim"):
        tiny_ae(latent_dim=0)


def test_samples_come_from_the_gaussian_fitted_to_the_codes():
    model = tiny_ae(latent_momentum=1.0)  # momentum 1: the moments of the last batch exactly
    codes = torch.randn(4096, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.5, 1, 2, 3]) + 5
    model._track_codes(codes)
    mean, covariance = model._code_gaussian()
    assert torch.allclose(mean, codes.mean(0), atol=1e-4)
    assert torch.allclose(covariance, torch.cov(codes.T, correction=0), atol=1e-2)
    assert torch.allclose(model.latent_gaussian()[1], torch.tensor([0.5, 1, 2, 3]), rtol=0.05)

    # Reproducible with a generator, and the global RNG is left alone.
    state = torch.get_rng_state()
    first = model.sample(5, generator=torch.Generator().manual_seed(3))
    again = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and torch.equal(torch.get_rng_state(), state)
    assert first.shape == (5, 1, 16, 16) and first.min() >= -1 and first.max() <= 1


def test_training_lowers_the_reconstruction_error_and_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = tiny_ae(hidden_channels=(8, 16), latent_dim=8, lr=3e-3)
    images, _ = digit_images(32)
    before = model.reconstruction_error(images).mean().item()
    trainer = train(model, DigitsDataModule(image_size=16, batch_size=32), 60, tmp_path)
    model.eval()
    after = model.reconstruction_error(images).mean().item()
    assert after < 0.6 * before
    assert not torch.equal(model.code_mean, torch.zeros(8))  # the code moments follow training

    trainer.save_checkpoint(tmp_path / "ae.ckpt")
    loaded = load_model(tmp_path / "ae.ckpt")
    assert isinstance(loaded, AutoEncoder) and loaded.iteration == 60
    assert torch.allclose(loaded.reconstruct(images), model.reconstruct(images))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.allclose(loaded.sample(4, generator=g()), model.sample(4, generator=g()))


def test_cli_refuses_an_image_size_the_networks_cannot_halve(capsys):
    from genmodels.commands import main
    from tests.cli.common import EXPERIMENTS

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(EXPERIMENTS / "vae/digits.yaml"), "--data.init_args.image_size", "28",
              "--trainer.logger", "false"])
    assert exit_info.value.code == 2
    assert "image size 28 is not divisible by 2^3 = 8" in capsys.readouterr().err
