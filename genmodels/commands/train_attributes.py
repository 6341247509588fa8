"""``genmodels train-attributes``: train the multi-label attribute classifier (`genmodels.apps.attributes`).

Its file is what ``genmodels control`` and ``genmodels bias`` take as ``--classifier`` for
attribute edits. Example::

    genmodels train-attributes --data experiments/dcgan/celeba.yaml --epochs 10 --out attributes-celeba.pt
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import _classifier

NAME = "train-attributes"
HELP = "train the multi-label attribute classifier used by control and bias"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Train a multi-label attribute classifier.")
    return _classifier.add_options(p, "datamodule config with attribute labels", 10, "attributes")


def run(args: argparse.Namespace) -> str:
    """Returns the written file's SHA-256."""
    from genmodels.apps.attributes import save_attribute_classifier, train_attribute_classifier

    classifier, out, digest = _classifier.train_and_save(args, "attributes", train_attribute_classifier, save_attribute_classifier)
    print(f"mean test accuracy {classifier.meta['mean_test_accuracy']:.4f} over {len(classifier.attribute_names)} attributes")
    print(f"classifier written to {out}\nsha256 {digest}")
    return digest
