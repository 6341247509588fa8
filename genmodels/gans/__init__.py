"""Adversarial model families, one file per paper."""

from genmodels.gans.dcgan import DCGAN
from genmodels.gans.gan import GAN

__all__ = ["GAN", "DCGAN"]
