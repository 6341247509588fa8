"""Tiny autoencoders and short training runs on the embedded digits, shared by the family's tests."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from datamodules import DigitsDataModule
from genmodels import VAE, AutoEncoder
from genmodels.callbacks import StopAtIteration


def tiny_vae(**kwargs: Any) -> VAE:
    return VAE(**{"image_shape": (1, 16, 16), "latent_dim": 4, "hidden_channels": (4, 8), **kwargs})


def tiny_ae(**kwargs: Any) -> AutoEncoder:
    return AutoEncoder(**{"image_shape": (1, 16, 16), "latent_dim": 4, "hidden_channels": (4, 8), **kwargs})


def digit_images(n: int = 16, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` held-out digits in [-1, 1] and their labels."""
    dm = DigitsDataModule(image_size=size)
    dataset = dm._dataset("test")
    return dataset.images[:n].float() / 127.5 - 1, dataset.labels[:n]


def train(model: pl.LightningModule, datamodule: Any, iterations: int, root: Any, callbacks=(), logger: Any = False) -> pl.Trainer:
    """Fit ``iterations`` batches on the CPU without validation, checkpoints or progress bars."""
    trainer = pl.Trainer(
        accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=root, max_epochs=-1, num_sanity_val_steps=0,
        check_val_every_n_epoch=10_000, log_every_n_steps=1, callbacks=[*callbacks, StopAtIteration(iterations)],
    )
    trainer.fit(model, datamodule)
    return trainer
