"""genmodels: generative image models as PyTorch Lightning modules.

Every model is importable from here (``genmodels.DCGAN``) and usable by class path in the
experiment YAMLs (``class_path: genmodels.DCGAN``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use (PEP 562): ``genmodels --help`` and the commands' parsers must
# not pay for torch and Lightning (seconds) before they print anything.
_HOMES: dict[str, str] = {
    "GenerativeModel": "genmodels.base",
    "CheckpointMismatchError": "genmodels.base",
    "AdversarialModel": "genmodels.gans.adversarial",
    **dict.fromkeys(
        ["DCGAN", "DFGAN", "GAN", "WGAN", "WGANGP", "AttnGAN", "BigGAN", "ConditionalGAN", "CycleGAN", "Pix2Pix",
         "ProGAN", "StackGAN", "StyleGAN", "StyleGAN2"],
        "genmodels.gans",
    ),
    "VAE": "genmodels.autoencoders",
    "AutoEncoder": "genmodels.autoencoders",
    **dict.fromkeys(["Glow", "IndependentPixels", "PixelCNN", "RealNVP"], "genmodels.likelihood"),
    "DAMSM": "genmodels.text.damsm",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'genmodels' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


def import_all() -> None:
    """Import every model class now (LightningCLI lists a base class's subclasses from what is imported)."""
    for name in _HOMES:
        __getattr__(name)


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
