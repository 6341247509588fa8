"""Autoencoders and variational autoencoders, one file per paper (their training views: `genmodels.callbacks`)."""

from genmodels.autoencoders.autoencoder import AutoEncoder, ConvAutoEncoderBase
from genmodels.autoencoders.vae import VAE

__all__ = ["AutoEncoder", "ConvAutoEncoderBase", "VAE"]
