"""Translating images with a Pix2Pix / CycleGAN checkpoint, for ``genmodels translate`` (`genmodels.commands.translate`).

Examples::

    genmodels translate --ckpt runs/pix2pix/maps/checkpoints/last.ckpt --input photos/ --out maps/
    genmodels translate --ckpt horse2zebra.ckpt --input horses/ --out zebras/ --direction AtoB
    genmodels translate --ckpt horse2zebra.ckpt --input zebras/ --out horses/ --direction BtoA
    genmodels translate --ckpt maps.ckpt --input any_size/ --out out/ --resize 256

Every image under ``--input`` (recursively: png, jpg, jpeg, webp) is translated at its own size
and written as PNG to the same relative path under ``--out``. The networks are fully
convolutional, so any size works whose height and width are multiples of the network's stride
(``2^num_downs`` for Pix2Pix's U-Net, e.g. 256 for U-Net-256; 4 for CycleGAN); another size is
an error naming the file and the stride, unless ``--resize S`` resizes every image to S x S
first (bicubic; the output keeps that size). An unreadable or truncated file is an error naming
it. Pix2Pix's dropout noise is seeded (``--seed``, image k uses seed + k), so a run is
reproducible. ``--ckpt`` takes a training checkpoint or a ``genmodels export`` file, opened with
``weights_only=True`` (`genmodels.apps.export`). Errors exit with status 2 and a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from genmodels.gans.translation import TranslationModel
from genmodels.images import to_uint8
from genmodels.errors import InvalidValue

__all__ = ["translate_image", "load_source"]


def load_source(path: Path, channels: int, resize: Optional[int], multiple: int) -> torch.Tensor:
    """One source image as float (1, C, H, W) in [-1, 1]; errors name the file."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidValue(f"{path}: not a readable image ({err})") from err
    if resize is not None:
        image = image.resize((resize, resize), Image.Resampling.BICUBIC)
    width, height = image.size
    if width % multiple or height % multiple:
        raise InvalidValue(
            f"{path} is {width}x{height}; this network needs sides that are multiples of {multiple}. "
            f"Crop or pad the image, or pass --resize (e.g. --resize {max(multiple, round(max(width, height) / multiple) * multiple)})"
        )
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    pixels = pixels.unsqueeze(-1) if pixels.ndim == 2 else pixels
    return pixels.permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1


@torch.no_grad()
def translate_image(model: TranslationModel, source: torch.Tensor, direction: str, seed: int) -> torch.Tensor:
    """The translation of ``source`` (1, C, H, W), uint8 (C, H, W); the model's noise comes from ``seed``."""
    from genmodels.gans.translation import seeded_noise

    source = source.to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with seeded_noise(generator, model.device):
        return to_uint8(model.translate(source, direction))[0].cpu()
