"""Adversarial model families, one file per paper."""

from genmodels.gans.cgan import ConditionalGAN
from genmodels.gans.dcgan import DCGAN
from genmodels.gans.gan import GAN, LatentGAN
from genmodels.gans.wgan import WGAN
from genmodels.gans.wgan_gp import WGANGP
from genmodels.gans.stackgan import StackGAN
from genmodels.gans.dfgan import DFGAN
from genmodels.gans.attngan import AttnGAN

__all__ = ["GAN", "LatentGAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN", "StackGAN", "DFGAN", "AttnGAN"]
