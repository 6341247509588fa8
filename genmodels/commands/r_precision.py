"""``genmodels r-precision``: R-precision of a text-to-image checkpoint with a DAMSM (`genmodels.text.metrics`).

Generates one image per validation caption and reports top-1 retrieval among the true and 99
mismatched captions. Example::

    genmodels r-precision --ckpt runs/dfgan/cub/checkpoints/last.ckpt --damsm damsm/cub.ckpt --dataset cub
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _text_data
from genmodels.commands import common as c

NAME = "r-precision"
HELP = "R-precision of a text-to-image checkpoint (DAMSM retrieval among 100 captions)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="R-precision of a text-to-image checkpoint.")
    c.add_ckpt(p, "text-to-image checkpoint (training or `genmodels export` file)")
    c.option(p, "--damsm", required=True, metavar="PATH", help="DAMSM checkpoint (genmodels train-damsm) of the same data")
    _text_data.add_data_arguments(p)
    c.add_num_samples(p, None, "captions used (default: one per validation image)", aliases=("--n",))
    c.add_seed(p)
    c.add_device(p)
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from genmodels.text.damsm import load_damsm
    from genmodels.text.metrics import r_precision

    _text_data.check_data_arguments(args)
    model = c.load_checkpoint_model(args.ckpt, args.device)
    # getattr: any checkpoint may be given; only text-to-image models have a vocabulary.
    if getattr(model, "vocab", None) is None:
        raise c.UserError(f"{args.ckpt} holds a {type(model).__name__}, not a text-to-image model; "
                          "pass a StackGAN, AttnGAN or DF-GAN checkpoint")
    if args.num_samples is not None:
        c.check_memory(c.image_bytes(model.image_shape, args.num_samples, 8), f"--num-samples {args.num_samples} "
                       f"images of {c.shape_text(model.image_shape)}", "lower --num-samples", args.max_memory_gb)
    damsm = load_damsm(args.damsm, args.device)
    records = _text_data.datamodule(args).records("val")
    captions = [caps[0] for caps in records.captions][: args.num_samples]
    with torch.no_grad():
        result = r_precision(model, damsm, captions, seed=args.seed)
    print(f"R-precision {result['r_precision']:.4f} (top-1 among {int(result['candidates'])} captions, "
          f"{int(result['n'])} generated images, chance {1 / result['candidates']:.4f})")
    return result
