"""Penalties and BatchNorm: every adversarial model refuses GP/R1/R2 on a discriminator with BatchNorm."""

import pytest
import torch
from torch import nn

from genmodels import DCGAN, WGANGP, ConditionalGAN, Pix2Pix, ProGAN
from genmodels.errors import UserError
from genmodels.gans.losses import require_per_sample_critic


@pytest.mark.parametrize("penalty", ["gp", "r1", "r2"])
def test_dcgan_with_batchnorm_discriminator_refuses_every_penalty(penalty):
    with pytest.raises(UserError, match="BatchNorm"):
        DCGAN(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4, discriminator_norm="batch", penalty=penalty)


def test_conditional_gan_and_pix2pix_with_batchnorm_refuse_a_penalty():
    with pytest.raises(UserError, match="BatchNorm"):
        ConditionalGAN(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4, discriminator_norm="batch", penalty="r1")
    with pytest.raises(UserError, match="BatchNorm"):
        Pix2Pix(image_shape=(3, 32, 32), ngf=4, ndf=4, norm="batch", penalty="r1")


def test_progan_penalty_path_refuses_a_batchnorm_critic():
    # ProGAN computes its own penalty (gradient_penalty / r1_penalty) but installs D through
    # AdversarialModel.build, where the check lives.
    model = ProGAN(image_shape=(3, 8, 8), latent_dim=8, channel_base=32, channel_max=8)
    with pytest.raises(UserError, match="BatchNorm"):
        model.build(model.generator, nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))


def test_per_sample_normalizations_and_unpenalized_batchnorm_are_accepted():
    DCGAN(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4, discriminator_norm="layer", penalty="gp")
    DCGAN(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4, discriminator_norm="batch", penalty=None)
    Pix2Pix(image_shape=(3, 32, 32), ngf=4, ndf=4, norm="instance", penalty="r1")
    require_per_sample_critic(nn.Sequential(nn.BatchNorm2d(2)), None)


def test_batchnorm_makes_the_gradient_penalty_depend_on_the_rest_of_the_batch():
    # Why the refusal: the same sample gets a different penalty gradient when its batch-mates
    # change, which a per-sample penalty must not.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(1)).train()
    critic(torch.randn(2, 1, 6, 6))  # materialize the lazy layer
    x = torch.randn(1, 1, 6, 6, requires_grad=True)
    grads = []
    for seed in (1, 2):
        others = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
        (g,) = torch.autograd.grad(critic(torch.cat([x, others]))[0].sum(), x)
        grads.append(g)
    assert not torch.allclose(grads[0], grads[1])
    # Without BatchNorm the per-sample gradient is independent of the batch.
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(64, 1))
    per_sample = [torch.autograd.grad(plain(torch.cat([x, torch.randn(3, 1, 6, 6)]))[0].sum(), x)[0] for _ in range(2)]
    torch.testing.assert_close(per_sample[0], per_sample[1])


def test_wgan_gp_refuses_a_batchnorm_critic_by_name():
    with pytest.raises(ValueError, match="discriminator_norm"):
        WGANGP(image_shape=(1, 16, 16), discriminator_norm="batch")
