"""Data options shared by ``genmodels train-damsm`` and ``genmodels r-precision`` (`datamodules.text_image`)."""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import common as c

#: Largest --image-size accepted (Inception-v3's 299 and the 256 of StackGAN stage II fit).
MAX_IMAGE_SIZE = 1024


def add_data_arguments(p: argparse.ArgumentParser, batch_size: int = 48) -> None:
    c.option(p, "--dataset", choices=("cub", "oxford102", "shapes"), required=True, help="text-image dataset")
    c.option(p, "--data-dir", default=None, metavar="DIR", help="data root (default $GENMODELS_DATA, else ./data)")
    c.option(p, "--image-size", type=c.positive_int, default=64, metavar="S",
             help=f"image side in pixels (default 64, at most {MAX_IMAGE_SIZE})")
    c.option(p, "--min-word-count", type=c.positive_int, default=1, help="words seen fewer times are <unk> (default 1)")
    c.option(p, "--max-length", type=c.positive_int, default=18, help="caption tokens kept (default 18)")
    c.option(p, "--synthetic-size", type=c.positive_int, default=1024, help="shapes only: training images (default 1024)")
    c.add_batch_size(p, batch_size)
    c.option(p, "--num-workers", type=c.nonnegative_int, default=4, help="data loader worker processes (default 4)")


def check_data_arguments(args: argparse.Namespace) -> None:
    if args.image_size > MAX_IMAGE_SIZE:
        raise c.UserError(f"--image-size {args.image_size} is over {MAX_IMAGE_SIZE}; use the size the model trains at (64-299)")
    if args.data_dir is not None and args.dataset != "shapes":
        from pathlib import Path

        if not Path(args.data_dir).is_dir():
            raise c.UserError(f"--data-dir {args.data_dir} is not a folder; pass the folder that holds the {args.dataset} data")


def datamodule(args: argparse.Namespace, random_flip: bool = False) -> Any:
    from datamodules.text_image import TextImageDataModule

    return TextImageDataModule(args.dataset, args.data_dir, args.batch_size, args.num_workers, args.image_size,
                               max_length=args.max_length, min_word_count=args.min_word_count,
                               synthetic_size=args.synthetic_size, random_flip=random_flip)
