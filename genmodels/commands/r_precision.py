"""``genmodels r-precision``: R-precision of a text-to-image checkpoint with a DAMSM (`genmodels.text.metrics`).

The common protocol (DM-GAN code/trainer.py, behind the published CUB numbers since): 30,000
images generated from test captions (passes over the test images, one caption drawn per image and
pass), each scored top-1 among its true caption and 99 captions of test images of other classes,
reported as mean and standard deviation over 10 folds. ``--mismatched any`` draws the 99 among
all other distinct captions of the queries instead. Example::

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
    c.add_num_samples(p, 30000, "generated images (queries)", aliases=("--n",))
    c.option(p, "--mismatched", choices=("other-classes", "any"), default="other-classes",
             help="pool of the 99 mismatched captions: captions of other classes (the common protocol) or any other caption")
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
    # features only are kept (images are generated and encoded in batches of 50)
    c.check_memory(c.image_bytes(model.image_shape, 50, 8), "a batch of 50 images", "use a smaller model", args.max_memory_gb)
    damsm = load_damsm(args.damsm, args.device)
    records = _text_data.datamodule(args).records("val")
    captions, classes = query_captions(records.captions, records.labels.tolist(), args.num_samples, args.seed)
    pool = ([t for caps in records.captions for t in caps],
            [int(label) for caps, label in zip(records.captions, records.labels.tolist()) for _ in caps])
    with torch.no_grad():
        if args.mismatched == "other-classes":
            result = r_precision(model, damsm, captions, seed=args.seed, classes=classes, pool=pool)
        else:
            result = r_precision(model, damsm, captions, seed=args.seed)
    print(f"R-precision {result['r_precision']:.4f} +- {result['r_precision_std']:.4f} (top-1 among "
          f"{int(result['candidates'])} captions, mismatched from {args.mismatched}, {int(result['n'])} generated images, "
          f"chance {1 / result['candidates']:.4f})")
    return result


def query_captions(captions: list[list[str]], labels: list[int], n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` (caption, class) queries: passes over the images, one caption drawn per image and pass."""
    import numpy as np

    queries: list[str] = []
    classes: list[int] = []
    passes = 0
    while len(queries) < n:
        for i, caps in enumerate(captions):
            if len(queries) == n:
                break
            queries.append(caps[int(np.random.default_rng([seed, passes, i]).integers(len(caps)))])
            classes.append(int(labels[i]))
        passes += 1
    return queries, classes
