"""genmodels: generative image models as PyTorch Lightning modules.

Every model is importable from here (``genmodels.DCGAN``) and usable by class path in the
experiment YAMLs (``class_path: genmodels.DCGAN``).
"""

from genmodels.base import AdversarialModel, CheckpointMismatchError, GenerativeModel
from genmodels.gans import DCGAN, GAN, WGAN, WGANGP

__version__ = "0.1.0"

__all__ = ["GenerativeModel", "AdversarialModel", "CheckpointMismatchError", "GAN", "DCGAN", "WGAN", "WGANGP", "__version__"]
