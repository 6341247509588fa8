"""``genmodels train-classifier``: train the LeNet domain classifier used by ``--extractor classifier:PATH``.

Example::

    genmodels train-classifier --data experiments/dcgan/digits.yaml --epochs 20 --out lenet-digits.pt
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _classifier

NAME = "train-classifier"
HELP = "train the LeNet domain classifier (class accuracy, *_lenet metrics, augment --labeler)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Train the LeNet domain classifier.")
    return _classifier.add_options(p, "datamodule config", 20, "lenet")


def run(args: argparse.Namespace) -> str:
    """Returns the written file's SHA-256."""
    from genmodels.metrics.classifier import save_classifier, train_classifier

    classifier, out, digest = _classifier.train_and_save(args, "lenet", train_classifier, save_classifier)
    print(f"test accuracy {classifier.meta['test_accuracy']:.4f} on {classifier.meta['dataset']}")
    print(f"classifier written to {out}\nsha256 {digest}")
    print(f"use it with: --extractor classifier:{out}   (metrics named *_lenet)")
    return digest
