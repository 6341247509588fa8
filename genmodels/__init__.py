"""genmodels: generative image models as PyTorch Lightning modules.

Every model is importable from here (``genmodels.DCGAN``) and usable by class path in the
experiment YAMLs (``class_path: genmodels.DCGAN``).
"""

from genmodels.base import CheckpointMismatchError, GenerativeModel
from genmodels.gans.adversarial import AdversarialModel
from genmodels.autoencoders import VAE, AutoEncoder
from genmodels.gans import (
    DCGAN, DFGAN, GAN, WGAN, WGANGP, AttnGAN, BigGAN, ConditionalGAN, CycleGAN, Pix2Pix, ProGAN, StackGAN, StyleGAN, StyleGAN2,
)
from genmodels.likelihood import Glow, IndependentPixels, PixelCNN, RealNVP
from genmodels.text.damsm import DAMSM

__version__ = "0.1.0"

__all__ = [
    "GenerativeModel", "AdversarialModel", "CheckpointMismatchError",
    # adversarial
    "GAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN", "BigGAN",
    "ProGAN", "StyleGAN", "StyleGAN2",
    "Pix2Pix", "CycleGAN",
    "StackGAN", "AttnGAN", "DFGAN", "DAMSM",
    # autoencoders
    "AutoEncoder", "VAE",
    # likelihood
    "RealNVP", "Glow", "PixelCNN", "IndependentPixels",
    "__version__",
]
