"""``genmodels train-attributes``: train the multi-label attribute classifier (`genmodels.apps.attributes`).

Its file is what ``genmodels control`` and ``genmodels bias`` take as ``--classifier`` for
attribute edits. Example::

    genmodels train-attributes --data experiments/dcgan/celeba.yaml --epochs 10 --out attributes-celeba.pt
"""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import common as c

NAME = "train-attributes"
HELP = "train the multi-label attribute classifier used by control and bias"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Train a multi-label attribute classifier.")
    c.option(p, "--data", required=True, metavar="YAML",
             help="datamodule config with attribute labels: an experiment YAML (its data:) or {class_path, init_args}")
    c.option(p, "--epochs", type=c.positive_int, default=10, help="training epochs (default 10)")
    c.option(p, "--lr", type=c.positive_float, default=2e-3, help="Adam learning rate (default 0.002)")
    c.add_seed(p)
    c.add_device(p)
    c.add_out(p, "output file (default attributes-<dataset>.pt); a <out>.sha256 sidecar is written next to it", required=False)
    return p


def run(args: argparse.Namespace) -> str:
    """Returns the written file's SHA-256."""
    from genmodels.apps.attributes import save_attribute_classifier, train_attribute_classifier
    from genmodels.metrics.commands import load_datamodule

    datamodule = load_datamodule(args.data)
    out = c.check_output(args.out or f"attributes-{datamodule.dataset_name}.pt", inputs=[args.data], overwrite=args.overwrite)
    c.check_output(f"{out}.sha256", inputs=[args.data], overwrite=args.overwrite)
    classifier = train_attribute_classifier(datamodule, args.epochs, args.lr, args.seed, args.device)
    digest = save_attribute_classifier(classifier, out)
    print(f"mean test accuracy {classifier.meta['mean_test_accuracy']:.4f} over {len(classifier.attribute_names)} attributes")
    print(f"classifier written to {out}\nsha256 {digest}")
    return digest
