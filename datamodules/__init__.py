"""LightningDataModules for image datasets, one file per dataset family.

Every datamodule yields batches ``{"image": float (B,C,H,W) in [-1, 1], "label": int64 (B,)}``
to the model (uint8 until `on_after_batch_transfer` converts it on the device), exposes
``image_shape`` and ``num_classes`` without touching the disk, never downloads unless
``download=True``, and resumes exactly mid-epoch from its ``state_dict``.
"""

from datamodules.base import DataError, DataNotFoundError, DataReport, ImageDataModule, ResumableSampler
from datamodules.celeba import CelebADataModule
from datamodules.cifar10 import CIFAR10DataModule
from datamodules.digits import DigitsDataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from datamodules.subset import ClassSubsetDataModule
from datamodules.translation import PairedImageDataModule, UnpairedImageDataModule
from datamodules.text_image import TextImageDataModule

__all__ = [
    "ImageDataModule",
    "DataReport",
    "DataError",
    "DataNotFoundError",
    "DigitsDataModule",
    "MNISTDataModule",
    "FashionMNISTDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "ImageFolderDataModule",
    "ClassSubsetDataModule",
    "TextImageDataModule",
    "ResumableSampler",
    "PairedImageDataModule",
    "UnpairedImageDataModule",
]
