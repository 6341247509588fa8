"""``genmodels class-accuracy``: how often a class classifier labels a conditional model's class-k samples as k.

Example::

    genmodels class-accuracy --ckpt runs/cgan/digits/checkpoints/last.ckpt --classifier lenet-digits.pt --samples-per-class 100
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import common as c

NAME = "class-accuracy"
HELP = "class accuracy of a class-conditional model's samples under a trained classifier"
_BATCH = 500


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Class accuracy of a class-conditional model's samples.")
    c.add_ckpt(p, "checkpoint of a class-conditional model (training or `genmodels export` file)")
    c.option(p, "--classifier", required=True, metavar="PATH", help="class classifier written by `genmodels train-classifier`")
    c.option(p, "--samples-per-class", type=c.positive_int, default=100, metavar="N", help="samples drawn per class (default 100)")
    c.add_seed(p)
    c.add_device(p)
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> float:
    import torch

    from genmodels.apps.generation import num_classes
    from genmodels.apps.scores import class_accuracy
    from genmodels.metrics.classifier import load_classifier

    model = c.load_checkpoint_model(args.ckpt, args.device)
    classes = num_classes(model)
    if classes < 2:
        raise c.UserError(f"{args.ckpt} holds a {type(model).__name__}, which is not class-conditional; "
                          "class accuracy needs a conditional model (e.g. a cGAN checkpoint)")
    c.check_memory(c.image_bytes(model.image_shape, _BATCH, 8) + 16 * classes * args.samples_per_class,
                   f"--samples-per-class {args.samples_per_class} x {classes} classes", "lower --samples-per-class",
                   args.max_memory_gb)
    classifier = load_classifier(args.classifier, map_location=args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    accuracy, per_class = class_accuracy(model, classifier, args.samples_per_class, batch_size=_BATCH, generator=generator)
    print(f"class accuracy {accuracy:.4f} ({args.samples_per_class} samples per class, iteration {model.iteration})")
    print("per class: " + " ".join(f"{k}:{a:.2f}" for k, a in enumerate(per_class.tolist())))
    return accuracy
