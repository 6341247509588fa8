"""genmodels: generative image models as PyTorch Lightning modules.

Every model is importable from here (``genmodels.DCGAN``) and usable by class path in the
experiment YAMLs (``class_path: genmodels.DCGAN``).
"""

from genmodels.base import AdversarialModel, CheckpointMismatchError, GenerativeModel
from genmodels.gans import DCGAN, GAN, WGAN, WGANGP
from genmodels.likelihood import Glow, IndependentPixels, PixelCNN, RealNVP
from genmodels.gans import ConditionalGAN
from genmodels.autoencoders import VAE, AutoEncoder

__version__ = "0.1.0"

__all__ = ["GenerativeModel", "AdversarialModel", "CheckpointMismatchError", "GAN", "DCGAN", "WGAN", "WGANGP", "ConditionalGAN", "AutoEncoder", "VAE", "RealNVP", "Glow", "PixelCNN", "IndependentPixels", "__version__"]

# Image-to-image translation.
from genmodels.gans import CycleGAN, Pix2Pix  # noqa: E402

__all__ += ["Pix2Pix", "CycleGAN"]
