"""Adversarial model families, one file per paper."""

from genmodels.gans.cgan import ConditionalGAN
from genmodels.gans.dcgan import DCGAN
from genmodels.gans.gan import GAN, LatentGAN
from genmodels.gans.wgan import WGAN
from genmodels.gans.wgan_gp import WGANGP

__all__ = ["GAN", "LatentGAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN"]

# Image-to-image translation.
from genmodels.gans.cyclegan import CycleGAN  # noqa: E402
from genmodels.gans.pix2pix import Pix2Pix  # noqa: E402

__all__ += ["Pix2Pix", "CycleGAN"]
