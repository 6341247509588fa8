"""genmodels: generative image models as PyTorch Lightning modules.

Every model is importable from here (``genmodels.DCGAN``) and usable by class path in the
experiment YAMLs (``class_path: genmodels.DCGAN``).
"""

from genmodels.base import AdversarialModel, CheckpointMismatchError, GenerativeModel
from genmodels.gans import DCGAN, GAN, WGAN, WGANGP
from genmodels.likelihood import Glow, IndependentPixels, PixelCNN, RealNVP
from genmodels.gans import ConditionalGAN
from genmodels.autoencoders import VAE, AutoEncoder
from genmodels.gans import ProGAN, StyleGAN, StyleGAN2

__version__ = "0.1.0"

__all__ = ["GenerativeModel", "AdversarialModel", "CheckpointMismatchError", "GAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN", "AutoEncoder", "VAE", "RealNVP", "Glow", "PixelCNN", "IndependentPixels", "ProGAN", "StyleGAN", "StyleGAN2", "__version__"]
