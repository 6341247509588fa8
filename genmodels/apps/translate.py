"""The ``genmodels translate`` command: translate a folder of images with a Pix2Pix / CycleGAN checkpoint.

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

import argparse
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from datamodules.image_folder import find_images
from genmodels.apps.commands import _positive, _seed, default_device, exit_on_value_error
from genmodels.apps.export import load_generative_model
from genmodels.gans.translation import TranslationModel
from genmodels.images import to_uint8

__all__ = ["translate_main", "translate_image", "load_source"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels translate", description="Translate a folder of images with a Pix2Pix or CycleGAN checkpoint.")
    p.add_argument("--ckpt", required=True, help="training checkpoint or `genmodels export` weights file")
    p.add_argument("--input", required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder (PNG files, same relative paths)")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="CycleGAN: AtoB uses G, BtoA uses F; Pix2Pix: only its trained direction (AtoB)")
    p.add_argument("--resize", type=_positive, default=None, metavar="S", help="resize every image to S x S first")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the model's noise (Pix2Pix dropout)")
    p.add_argument("--device", default=default_device())
    return p


def load_source(path: Path, channels: int, resize: Optional[int], multiple: int) -> torch.Tensor:
    """One source image as float (1, C, H, W) in [-1, 1]; errors name the file."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    if resize is not None:
        image = image.resize((resize, resize), Image.Resampling.BICUBIC)
    width, height = image.size
    if width % multiple or height % multiple:
        raise ValueError(
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


@exit_on_value_error("genmodels translate")
def translate_main(argv: list[str]) -> list[Path]:
    """``genmodels translate --ckpt PATH --input DIR --out DIR [--direction AtoB|BtoA] [--resize S] [--seed S]``."""
    args = _parser().parse_args(argv)
    source_dir, out_dir = Path(args.input), Path(args.out)
    if not source_dir.is_dir():
        raise ValueError(f"--input {source_dir} is not a folder")
    paths = find_images(source_dir)
    if not paths:
        raise ValueError(f"no images (png, jpg, jpeg, webp) under {source_dir}")
    model = load_generative_model(args.ckpt, args.device)
    if not isinstance(model, TranslationModel):
        raise ValueError(f"{args.ckpt} holds a {type(model).__name__}, not an image-to-image model (Pix2Pix, CycleGAN)")
    if args.direction == "BtoA" and not model.bidirectional:
        raise ValueError(f"{type(model).__name__} translates only in the direction it was trained in; drop --direction BtoA")
    from tqdm.auto import tqdm

    written = []
    for index, path in enumerate(tqdm(paths, desc="translate", unit="image")):
        source = load_source(path, model.source_channels_of(args.direction), args.resize, model.input_multiple)
        pixels = translate_image(model, source, args.direction, args.seed + index)
        target = (out_dir / path.relative_to(source_dir)).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.permute(1, 2, 0).squeeze(-1).numpy()).save(target, format="PNG")
        written.append(target)
    print(f"{len(written)} images translated by {type(model).__name__} ({args.direction}, iteration {model.iteration}) -> {out_dir}")
    return written
