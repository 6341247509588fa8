"""Tiny configurations of every exported model for the contract test (tests/genmodels/test_contract.py).

Adding a model to ``genmodels.__all__`` means adding one entry here: its constructor arguments at
test size, the protocols it satisfies, and a condition it must refuse. The contract test fails for
an exported model without an entry.
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
TEXT = dict(vocab=VOCAB, text_dim=16, word_embedding_dim=8, latent_dim=8)
NOT_A_CAPTION = [""]  # a caption without any word
UNCONDITIONAL_LABEL = 3  # a class label for a model that takes none

TINY: dict[str, dict[str, Any]] = {
    "GAN": dict(
        args=dict(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,)),
        protocols={LatentGenerator},
    ),
    "DCGAN": dict(args=dict(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4), protocols={LatentGenerator}),
    "WGAN": dict(args=dict(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4), protocols={LatentGenerator}),
    "WGANGP": dict(args=dict(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4), protocols={LatentGenerator}),
    "ConditionalGAN": dict(
        args=dict(image_shape=(1, 16, 16), num_classes=3, latent_dim=8, feature_maps=4),
        protocols={LatentGenerator, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "BigGAN": dict(
        args=dict(image_shape=(1, 16, 16), num_classes=3, latent_dim=12, channels=16, shared_dim=8, attention_resolution=8),
        protocols={LatentGenerator, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "ProGAN": dict(
        args=dict(image_shape=(1, 16, 16), latent_dim=8, channel_base=32, channel_max=8), protocols={LatentGenerator}
    ),
    "StyleGAN": dict(
        args=dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8),
        protocols={LatentGenerator, StyleBased},
    ),
    "StyleGAN2": dict(
        args=dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8),
        protocols={LatentGenerator, StyleBased},
    ),
    "StyleGAN2 (class-conditional)": dict(
        **{"class": "StyleGAN2"},
        args=dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8, num_classes=3,
                  discriminator_mapping_layers=2),
        protocols={LatentGenerator, StyleBased, ClassConditional},
        bad_condition=torch.tensor([0, 3]),  # class 3 of 0..2
        good_condition=torch.tensor([2, 0]),
    ),
    "Pix2Pix": dict(
        args=dict(image_shape=(3, 32, 32), ngf=4, ndf=4),
        protocols={Translator},
        bad_condition=torch.zeros(2, 1, 32, 32),  # one channel for a three-channel source
        good_condition=torch.zeros(2, 3, 32, 32),
    ),
    "CycleGAN": dict(
        args=dict(image_shape=(3, 32, 32), ngf=4, ndf=4, n_blocks=1, pool_size=2),
        protocols={Translator},
        bad_condition=torch.zeros(2, 1, 32, 32),
        good_condition=torch.zeros(2, 3, 32, 32),
    ),
    "StackGAN": dict(
        args=dict(image_shape=(3, 16, 16), gf_dim=4, df_dim=4, condition_dim=8, **TEXT),
        protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    "AttnGAN": dict(
        args=dict(image_shape=(3, 32, 32), ngf=4, df_dim=4, condition_dim=8, **TEXT),
        protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    "DFGAN": dict(
        args=dict(image_shape=(3, 16, 16), ngf=2, ndf=2, **TEXT),
        protocols={LatentGenerator, TextConditional},
        bad_condition=NOT_A_CAPTION,
        good_condition=["a red bird", "a blue flower"],
    ),
    # Autoencoders carry num_classes (0: unconditional), so both are ClassConditional structurally;
    # `genmodels.protocols.class_count` tells them apart.
    "AutoEncoder": dict(
        args=dict(image_shape=(1, 16, 16), latent_dim=4, hidden_channels=(4, 8)),
        protocols={Autoencoder, ClassConditional},
    ),
    "VAE": dict(
        args=dict(image_shape=(1, 16, 16), latent_dim=4, hidden_channels=(4, 8), num_classes=3),
        protocols={Autoencoder, ClassConditional},
        bad_condition=torch.tensor([0, 5]),
        good_condition=torch.tensor([1, 2]),
    ),
    "RealNVP": dict(
        args=dict(image_shape=(1, 8, 8), num_scales=2, hidden_channels=8, num_blocks=1), protocols={DensityModel}
    ),
    "Glow": dict(
        args=dict(image_shape=(1, 8, 8), num_levels=2, steps_per_level=1, hidden_channels=4), protocols={DensityModel}
    ),
    "PixelCNN": dict(
        args=dict(image_shape=(1, 4, 4), hidden_channels=8, num_layers=2, head_channels=8),
        protocols={DensityModel, ClassConditional},
    ),
    "IndependentPixels": dict(args=dict(image_shape=(1, 4, 4)), protocols={DensityModel}),
}

# Exported names that are not image models: they are exempt from the contract.
NOT_MODELS = {
    "GenerativeModel": "the base class",
    "AdversarialModel": "the base class of the GANs",
    "CheckpointMismatchError": "an exception",
    "DAMSM": "a text-image encoder pair (text-to-image training), not an image generator",
    "__version__": "the version string",
}


def bad_condition(name: str) -> Any:
    return TINY[name].get("bad_condition", UNCONDITIONAL_LABEL)
