"""What the contract test (tests/genmodels/test_contract.py) expects of every exported model.

Each model's test-size constructor arguments live on the model (``Model.tiny()``); adding a model
to ``genmodels.__all__`` means adding one entry here: the protocols it satisfies, a condition it
must refuse and one it accepts, and any arguments added to ``tiny()`` for the contract (the
training captions' vocabulary, classes for a model that is unconditional by default). The
contract test fails for an exported model without an entry.
"""

from __future__ import annotations

from typing import Any

import torch

from genmodels.protocols import (
    Autoencoder,
    ClassConditional,
    DensityModel,
    LatentGenerator,
    StyleBased,
    TextConditional,
    Translator,
)

VOCAB = ["<pad>", "<unk>", "a", "red", "blue", "bird", "flower"]
NOT_A_CAPTION = [""]  # a caption without any word
UNCONDITIONAL_LABEL = 3  # a class label for a model that takes none

TINY: dict[str, dict[str, Any]] = {
    "GAN": dict(protocols={LatentGenerator}),
    "DCGAN": dict(protocols={LatentGenerator}),
    "WGAN": dict(protocols={LatentGenerator}),
    "WGANGP": dict(protocols={LatentGenerator}),
    "ConditionalGAN": dict(
        protocols={LatentGenerator, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "BigGAN": dict(
        protocols={LatentGenerator, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "ProGAN": dict(protocols={LatentGenerator}),
    "StyleGAN": dict(protocols={LatentGenerator, StyleBased}),
    "StyleGAN2": dict(protocols={LatentGenerator, StyleBased}),
    "StyleGAN2 (class-conditional)": dict(
        **{"class": "StyleGAN2"},
        args=dict(num_classes=3, discriminator_mapping_layers=2),
        protocols={LatentGenerator, StyleBased, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "Pix2Pix": dict(
        protocols={Translator},
        bad_condition=torch.zeros(2, 1, 32, 32),  # one channel for a three-channel source
        good_condition=torch.zeros(2, 3, 32, 32),
    ),
    "CycleGAN": dict(
        protocols={Translator},
        bad_condition=torch.zeros(2, 1, 32, 32),
        good_condition=torch.zeros(2, 3, 32, 32),
    ),
    "StackGAN": dict(
        args=dict(vocab=VOCAB), protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    "AttnGAN": dict(
        args=dict(vocab=VOCAB), protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    "DFGAN": dict(
        args=dict(vocab=VOCAB), protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    # Autoencoders carry num_classes (0: unconditional), so both are ClassConditional structurally;
    # `genmodels.protocols.class_count` tells them apart.
    "AutoEncoder": dict(protocols={Autoencoder, ClassConditional}),
    "VAE": dict(
        args=dict(num_classes=3), protocols={Autoencoder, ClassConditional},
        bad_condition=torch.tensor([0, 5]),
        good_condition=torch.tensor([1, 2]),
    ),
    "RealNVP": dict(protocols={DensityModel}),
    "Glow": dict(protocols={DensityModel}),
    "PixelCNN": dict(protocols={DensityModel, ClassConditional}),
    "IndependentPixels": dict(protocols={DensityModel}),
}

# Exported names that are not image models: they are exempt from the contract.
NOT_MODELS = {
    "GenerativeModel": "the base class",
    "AdversarialModel": "the base class of the GANs",
    "CheckpointMismatchError": "an exception",
    "DAMSM": "a text-image encoder pair (text-to-image training), not an image generator",
    "__version__": "the version string",
}


def tiny_args(name: str) -> dict[str, Any]:
    """``genmodels.<name>.tiny()`` with this entry's additions."""
    import genmodels

    return {**getattr(genmodels, TINY[name].get("class", name)).tiny(), **TINY[name].get("args", {})}


def bad_condition(name: str) -> Any:
    return TINY[name].get("bad_condition", UNCONDITIONAL_LABEL)
