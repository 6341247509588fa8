"""``genmodels translate``: translate a folder of images with a Pix2Pix or CycleGAN checkpoint.

Examples::

    genmodels translate --ckpt runs/pix2pix/maps/checkpoints/last.ckpt --input photos/ --out maps/
    genmodels translate --ckpt horse2zebra.ckpt --input zebras/ --out horses/ --direction BtoA
    genmodels translate --ckpt maps.ckpt --input any_size/ --out out/ --resize 256

Every image under ``--input`` (recursively: png, jpg, jpeg, webp) is translated at its own size
(or ``--resize S`` x S) and written as PNG to the same relative path under ``--out``. Sizes the
network cannot take (sides not multiples of its stride) and files that are not images are found
before anything is written. Pix2Pix's dropout noise is seeded (image k uses ``--seed`` + k).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "translate"
HELP = "translate a folder of images with a Pix2Pix or CycleGAN checkpoint"
#: Activations a translation network holds per input value (U-Net/ResNet features at several scales).
_ACTIVATION_FACTOR = 64


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Translate a folder of images with a Pix2Pix or CycleGAN checkpoint.")
    c.add_ckpt(p)
    c.option(p, "--input", required=True, metavar="DIR", help="folder of images (searched recursively)")
    c.add_out(p, "output folder (PNG files, same relative paths); must not be or lie inside --input")
    c.option(p, "--direction", choices=("AtoB", "BtoA"), default="AtoB",
             help="CycleGAN: AtoB uses G, BtoA uses F; Pix2Pix: only its trained direction (AtoB)")
    c.option(p, "--resize", type=c.positive_int, default=None, metavar="S", help="resize every image to S x S first")
    c.add_seed(p, "seed of the model's noise (Pix2Pix dropout); image k uses seed + k")
    c.add_device(p)
    c.add_max_memory(p)
    return p


def _planned(source_dir: Path, paths: list[Path]) -> list[Path]:
    """The output of each input (``a/photo.jpg`` -> ``a/photo.png``); two inputs of one stem are refused."""
    planned: dict[Path, Path] = {}
    for path in paths:
        name = path.relative_to(source_dir).with_suffix(".png")
        if name in planned:
            raise c.UserError(f"{planned[name]} and {path} would both be translated to {name}; rename one of them "
                              "(outputs are PNG files named after their input)")
        planned[name] = path
    return list(planned)


def check_sizes(paths: list[Path], resize: Any, multiple: int, channels: int, max_memory_gb: float) -> None:
    """Read only the image headers: refuse unreadable files, sizes the network cannot take, and sizes over the memory limit."""
    from PIL import Image, UnidentifiedImageError

    largest = 0
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise c.UserError(f"{path}: not a readable image ({' '.join(str(err).split())}); remove it from --input") from None
        if resize is not None:
            width = height = resize
        largest = max(largest, width * height)
        if width % multiple or height % multiple:
            suggestion = max(multiple, round(max(width, height) / multiple) * multiple)
            raise c.UserError(f"{path} is {width}x{height}; this network needs sides that are multiples of {multiple}. "
                              f"Crop or pad the image, or pass --resize (e.g. --resize {suggestion})")
    what = f"--resize {resize}" if resize is not None else "the largest input image"
    c.check_memory(largest * channels * 4 * _ACTIVATION_FACTOR, f"{what} ({largest} pixels through the network)",
                   "lower --resize (or shrink the images)", max_memory_gb)


def run(args: argparse.Namespace) -> list[Path]:
    from genmodels.images import find_images

    source_dir, out_dir = Path(args.input), Path(args.out)
    if not source_dir.is_dir():
        raise c.UserError(f"--input {source_dir} is not a folder")
    paths = find_images(source_dir)
    if not paths:
        raise c.UserError(f"no images (png, jpg, jpeg, webp) under {source_dir}")
    c.check_output_dir(out_dir, _planned(source_dir, paths), inputs=[source_dir, args.ckpt], overwrite=args.overwrite)
    if args.resize is not None:  # priced before the checkpoint is even opened
        c.check_memory(args.resize**2 * 3 * 4 * _ACTIVATION_FACTOR, f"--resize {args.resize}", "lower --resize", args.max_memory_gb)
    model = c.load_checkpoint_model(args.ckpt, args.device)
    from genmodels.gans.translation import TranslationModel

    c.require_model(model, TranslationModel, args.ckpt, "an image-to-image model (Pix2Pix, CycleGAN)")
    if args.direction == "BtoA" and not model.bidirectional:
        raise c.UserError(f"{type(model).__name__} translates only in the direction it was trained in; drop --direction BtoA")
    channels = model.source_channels_of(args.direction)
    check_sizes(paths, args.resize, model.input_multiple, channels, args.max_memory_gb)
    from PIL import Image
    from tqdm.auto import tqdm

    from genmodels.apps.translate import load_source, translate_image
    from genmodels.atomic import atomic_write

    written = []
    for index, path in enumerate(tqdm(paths, desc="translate", unit="image")):
        source = load_source(path, channels, args.resize, model.input_multiple)
        pixels = translate_image(model, source, args.direction, args.seed + index)
        target = (out_dir / path.relative_to(source_dir)).with_suffix(".png")
        picture = Image.fromarray(pixels.permute(1, 2, 0).squeeze(-1).numpy())
        atomic_write(target, lambda f: picture.save(f, format="PNG"))
        written.append(target)
    print(f"{len(written)} images translated by {type(model).__name__} ({args.direction}, iteration {model.iteration}) -> {out_dir}")
    return written
