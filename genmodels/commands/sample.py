"""``genmodels sample``: draw images from a checkpoint into one grid PNG or a folder of PNGs.

Examples::

    genmodels sample --ckpt runs/dcgan/digits/checkpoints/last.ckpt --num-samples 64 --seed 0 --out grid.png
    genmodels sample --ckpt last.ckpt --num-samples 1000 --out samples/          # one PNG per image
    genmodels sample --ckpt cgan.ckpt --num-samples 100 --condition all --out grid.png
    genmodels sample --ckpt dfgan.ckpt --text "a red bird" "a small blue bird" --num-samples 8 --out birds.png

The same seed always writes the same PNG bytes. ``--truncation`` and ``--condition`` are described
in `genmodels.apps.latent` and `genmodels.apps.generation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from genmodels.atomic import atomic_write, atomic_write_text
from genmodels.commands import common as c

NAME = "sample"
HELP = "draw images from a checkpoint into a grid PNG or a folder of PNGs"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Draw images from a checkpoint (training or exported).")
    c.add_generation_options(p)
    c.add_num_samples(p, 64, "number of images (per caption with --text)", aliases=("--n",))
    c.add_seed(p, "seed: the same seed writes the same images")
    c.option(p, "--nrow", type=c.positive_int, default=None, help="images per grid row (default: a square)")
    c.add_batch_size(p, 64, "images generated per forward pass")
    c.add_out(p, "grid.png (one grid) or a folder (one NNNNNN.png per image)")
    c.option(p, "--text", nargs="+", default=None, metavar="CAPTION",
             help="text-to-image models: caption(s), each in quotes; --num-samples images per caption, one grid row each")
    c.add_max_memory(p)
    return p


def _planned_files(args: argparse.Namespace, count: int) -> list[str]:
    names = [f"{index:06d}.png" for index in range(count)]
    return names + (["captions.txt"] if args.text is not None else [])


def run(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out)
    count = args.num_samples * (len(args.text) if args.text is not None else 1)
    if out.suffix and out.suffix.lower() != ".png":
        raise c.UserError(f"--out must be a .png file or a directory, got {out}")
    if out.suffix:
        c.check_output(out, inputs=[args.ckpt], overwrite=args.overwrite)
    else:
        c.check_output_dir(out, _planned_files(args, min(count, 10_000)), inputs=[args.ckpt], overwrite=args.overwrite)
    model = c.load_checkpoint_model(args.ckpt, args.device)
    # The images are held at once (float, then uint8 PNG data): price them before generating.
    c.check_memory(c.image_bytes(model.image_shape, count, 5),
                   f"--num-samples {args.num_samples}{' per caption' if args.text else ''} "
                   f"({count} images of {c.shape_text(model.image_shape)})", "lower --num-samples", args.max_memory_gb)
    if args.text is not None:
        return _sample_text(model, args, out)
    from genmodels.apps.generation import generate

    images = generate(model, args.num_samples, args.seed, c.parse_condition(args.condition), args.truncation, args.batch_size)
    paths = write_samples(images, out, args.nrow)
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {out}"
    print(f"{args.num_samples} images of {type(model).__name__} (iteration {model.iteration}, seed {args.seed}) -> {where}")
    return paths


def write_samples(images: Any, out: Path, nrow: Optional[int] = None) -> list[Path]:
    """A grid when ``out`` ends in .png, else one ``NNNNNN.png`` per image in the folder ``out``."""
    from genmodels.apps.generation import grid_png, image_pngs

    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write(grid_png(images, nrow=nrow)))
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(image_pngs(images)):
        path = out / f"{index:06d}.png"
        atomic_write(path, lambda f: f.write(data))
        paths.append(path)
    return paths


def _sample_text(model: Any, args: argparse.Namespace, out: Path) -> list[Path]:
    """``--text``: a grid with one captioned row per caption, or one PNG per image plus captions.txt."""
    from genmodels.apps.generation import generate_from_text
    from genmodels.callbacks.caption_grid import captioned_grid

    images = generate_from_text(model, args.text, args.num_samples, args.seed, args.batch_size)
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        grid = captioned_grid(images, args.text, args.num_samples)
        atomic_write(out, lambda f: grid.save(f, format="PNG"))
        paths = [out]
    else:
        paths = write_samples(images, out)
        captions = [text for text in args.text for _ in range(args.num_samples)]
        atomic_write_text(out / "captions.txt", "".join(f"{p.name}\t{t}\n" for p, t in zip(paths, captions)))
    print(f"{len(images)} images of {type(model).__name__} for {len(args.text)} caption(s) (seed {args.seed}) -> {out}")
    return paths
