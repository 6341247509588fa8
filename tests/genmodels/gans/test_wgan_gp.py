"""WGAN-GP (Gulrajani et al. 2017): the authors' networks, initialization and defaults.

What the digits config samples after 1,000 iterations is a quality floor (tests/quality/test_digits_quality.py).
"""

from torch import nn

import pytest
import torch
import yaml

from genmodels import WGANGP
from genmodels.gans.wgan_gp import GulrajaniCritic, GulrajaniGenerator, tflib_conv_std
from tests.cli.common import EXPERIMENTS

# -- the authors' networks (igul222/improved_wgan_training) --------------------------------------


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_critic_parameters_match_gan_mnist_and_gan_cifar():
    # gan_mnist.py, DIM = 64: conv 1->64, 64->128, 128->256 (5x5, bias), linear 4*4*256 -> 1.
    mnist = (1 * 64 * 25 + 64) + (64 * 128 * 25 + 128) + (128 * 256 * 25 + 256) + (4 * 4 * 256 + 1)
    assert mnist == 1_030_145
    assert _count(GulrajaniCritic((1, 28, 28), dim=64)) == mnist
    # gan_cifar.py, DIM = 128: conv 3->128, 128->256, 256->512, linear 4*4*512 -> 1.
    cifar = (3 * 128 * 25 + 128) + (128 * 256 * 25 + 256) + (256 * 512 * 25 + 512) + (4 * 4 * 512 + 1)
    assert _count(GulrajaniCritic((3, 32, 32), dim=128)) == cifar == 4_114_689
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in GulrajaniCritic((3, 32, 32), dim=8).modules())


def test_generator_parameters_match_gan_mnist_and_gan_cifar():
    # gan_mnist.py (wgan-gp: no BatchNorm): linear 128 -> 4*4*4*64 = 4096, deconv 256->128, 128->64, 64->1.
    mnist = (128 * 4096 + 4096) + (256 * 128 * 25 + 128) + (128 * 64 * 25 + 64) + (64 * 1 * 25 + 1)
    assert _count(GulrajaniGenerator(128, (1, 28, 28), dim=64, norm="none")) == mnist == 1_554_177
    # gan_cifar.py: linear 128 -> 4*4*512 + BN(8192), deconv 512->256 + BN, 256->128 + BN, 128->3.
    cifar = (128 * 8192 + 8192) + 2 * 8192 + (512 * 256 * 25 + 256) + 2 * 256 + (256 * 128 * 25 + 128) + 2 * 128 + (128 * 3 * 25 + 3)
    assert _count(GulrajaniGenerator(128, (3, 32, 32), dim=128, norm="batch")) == cifar


def test_tflib_initialization_bounds():
    # tflib Conv2D(64 -> 128, 5, stride 2): fan_in 64*25, fan_out 128*25/4; std sqrt(4/(fan_in+fan_out)).
    assert tflib_conv_std(64, 128, transposed=False) == pytest.approx((4 / (1600 + 800)) ** 0.5)
    # tflib Deconv2D(256 -> 128, 5): fan_in 256*25/4, fan_out 128*25.
    assert tflib_conv_std(256, 128, transposed=True) == pytest.approx((4 / (1600 + 3200)) ** 0.5)
    torch.manual_seed(0)
    critic = GulrajaniCritic((1, 28, 28), dim=64)
    weight = critic.body[2].weight  # the 64 -> 128 convolution: 204,800 draws
    bound = tflib_conv_std(64, 128, False) * 3**0.5
    assert weight.abs().max().item() <= bound and weight.abs().max().item() > 0.99 * bound
    assert weight.std().item() == pytest.approx(tflib_conv_std(64, 128, False), rel=0.02)
    assert torch.count_nonzero(critic.body[2].bias) == 0


def test_feature_maps_follow_tensorflow_same_padding_and_the_mnist_crop():
    critic = GulrajaniCritic((1, 28, 28), dim=4)
    assert critic.features(torch.zeros(2, 1, 28, 28)).shape[-2:] == (4, 4)  # 28 -> 14 -> 7 -> 4
    generator = GulrajaniGenerator(8, (1, 28, 28), dim=4, norm="none")
    assert generator.sizes == [4, 7, 14, 28]  # 4 -> 8, cropped to 7 as in gan_mnist.py
    assert generator(torch.zeros(2, 8)).shape == (2, 1, 28, 28)


def test_wgan_gp_defaults_are_the_authors():
    model = WGANGP(image_shape=(3, 32, 32), feature_maps=8)
    assert (model.n_critic, model.penalty, model.penalty_weight) == (5, "gp", 10.0)
    assert (model.lr_g, model.lr_d, model.betas, model.latent_dim) == (1e-4, 1e-4, (0.5, 0.9), 128)
    assert isinstance(model.discriminator, GulrajaniCritic) and isinstance(model.generator, GulrajaniGenerator)


@pytest.mark.parametrize("name,channels,dim,g_params,d_params", [
    ("mnist", 1, 64, 1_554_177, 1_030_145),
    ("cifar10", 3, 128, None, 4_114_689),
])
def test_real_data_configs_build_the_authors_networks(name, channels, dim, g_params, d_params):
    config = yaml.safe_load((EXPERIMENTS / f"wgan_gp/{name}.yaml").read_text())
    args = config["model"]["init_args"]
    size = config["data"]["init_args"]["image_size"]
    model = WGANGP(image_shape=(channels, size, size), **args)
    assert args["feature_maps"] == dim and _count(model.discriminator) == d_params
    if g_params is not None:
        assert _count(model.generator) == g_params
    # ITERS = 200,000 generator iterations at 5 critic batches each.
    assert config["max_iterations"] == 200_000 * args["n_critic"]
    assert config["data"]["init_args"]["batch_size"] == {"mnist": 50, "cifar10": 64}[name]
