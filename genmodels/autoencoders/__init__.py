"""Autoencoders and variational autoencoders, one file per paper, plus their views."""

from genmodels.autoencoders.autoencoder import AutoEncoder, ConvAutoEncoderBase
from genmodels.autoencoders.vae import VAE

__all__ = ["AutoEncoder", "ConvAutoEncoderBase", "VAE"]
