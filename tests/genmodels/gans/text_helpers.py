"""Tiny text-to-image models and a shapes datamodule for the StackGAN / DF-GAN tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules.text_image import TextImageDataModule

TINY_TEXT = {"text_dim": 16, "word_embedding_dim": 8, "latent_dim": 8}


def shapes(image_size: int = 16, n: int = 32, batch_size: int = 8) -> TextImageDataModule:
    return TextImageDataModule("shapes", image_size=image_size, batch_size=batch_size, num_workers=0, synthetic_size=n)


def fit(model: pl.LightningModule, datamodule: pl.LightningDataModule, iterations: int, root: Path) -> pl.Trainer:
    """Train ``iterations`` batches (two optimizer steps each) on the CPU, no logger, no validation."""
    trainer = pl.Trainer(max_steps=2 * iterations, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=str(root))
    trainer.fit(model, datamodule)
    return trainer


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny networks run fastest on one thread; on a shared 2-core machine two threads spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
