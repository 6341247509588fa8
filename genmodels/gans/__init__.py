"""Adversarial model families, one file per paper."""

from genmodels.gans.attngan import AttnGAN
from genmodels.gans.biggan import BigGAN
from genmodels.gans.cgan import ConditionalGAN
from genmodels.gans.cyclegan import CycleGAN
from genmodels.gans.dcgan import DCGAN
from genmodels.gans.dfgan import DFGAN
from genmodels.gans.gan import GAN, LatentGAN
from genmodels.gans.pix2pix import Pix2Pix
from genmodels.gans.progan import ProGAN
from genmodels.gans.stackgan import StackGAN
from genmodels.gans.stylegan import StyleGAN, StyleGAN2
from genmodels.gans.wgan import WGAN
from genmodels.gans.wgan_gp import WGANGP

__all__ = [
    "GAN", "LatentGAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN", "BigGAN",
    "ProGAN", "StyleGAN", "StyleGAN2",
    "Pix2Pix", "CycleGAN",
    "StackGAN", "AttnGAN", "DFGAN",
]
