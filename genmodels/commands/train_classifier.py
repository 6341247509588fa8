"""``genmodels train-classifier``: train the LeNet domain classifier used by ``--extractor classifier:PATH``.

Example::

    genmodels train-classifier --data experiments/dcgan/digits.yaml --epochs 20 --out lenet-digits.pt
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import common as c

NAME = "train-classifier"
HELP = "train the LeNet domain classifier (class accuracy, *_lenet metrics, augment --labeler)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Train the LeNet domain classifier.")
    c.option(p, "--data", required=True, metavar="YAML",
             help="datamodule config: an experiment YAML (its data:) or {class_path, init_args}")
    c.option(p, "--epochs", type=c.positive_int, default=20, help="training epochs (default 20)")
    c.option(p, "--lr", type=c.positive_float, default=2e-3, help="Adam learning rate (default 0.002)")
    c.add_seed(p)
    c.add_device(p)
    c.add_out(p, "output file (default lenet-<dataset>.pt); a <out>.sha256 sidecar is written next to it", required=False)
    return p


def run(args: argparse.Namespace) -> str:
    """Returns the written file's SHA-256."""
    from genmodels.metrics.classifier import save_classifier, train_classifier
    from genmodels.metrics.commands import load_datamodule

    datamodule = load_datamodule(args.data)
    out = c.check_output(args.out or f"lenet-{datamodule.dataset_name}.pt", inputs=[args.data], overwrite=args.overwrite)
    c.check_output(f"{out}.sha256", inputs=[args.data], overwrite=args.overwrite)
    classifier = train_classifier(datamodule, args.epochs, args.lr, args.seed, args.device)
    digest = save_classifier(classifier, out)
    print(f"test accuracy {classifier.meta['test_accuracy']:.4f} on {classifier.meta['dataset']}")
    print(f"classifier written to {out}\nsha256 {digest}")
    print(f"use it with: --extractor classifier:{out}   (metrics named *_lenet)")
    return digest
