"""train-classifier and train-attributes: the same options and the same run around their own trainer.

Each trains a classifier on a datamodule config's train split and writes it, with a ``.sha256``
sidecar, to ``--out`` (default ``<prefix>-<dataset>.pt``); only the trainer and the writer differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from genmodels.commands import common as c


def add_options(p: argparse.ArgumentParser, data_help: str, epochs: int, prefix: str) -> argparse.ArgumentParser:
    """--data, --epochs, --lr, --seed, --device, --out, --overwrite."""
    c.option(p, "--data", required=True, metavar="YAML", help=f"{data_help}: an experiment YAML (its data:) or {{class_path, init_args}}")
    c.option(p, "--epochs", type=c.positive_int, default=epochs, help=f"training epochs (default {epochs})")
    c.option(p, "--lr", type=c.positive_float, default=2e-3, help="Adam learning rate (default 0.002)")
    c.add_seed(p)
    c.add_device(p)
    c.add_out(p, f"output file (default {prefix}-<dataset>.pt); a <out>.sha256 sidecar is written next to it", required=False)
    return p


def train_and_save(args: argparse.Namespace, prefix: str, train: Callable[..., Any],
                   save: Callable[[Any, Path], str]) -> tuple[Any, Path, str]:
    """Check the outputs, ``train(datamodule, epochs, lr, seed, device)``, ``save(classifier, out)``:
    returns the classifier, the file and its SHA-256."""
    from genmodels.metrics.commands import load_datamodule

    datamodule = load_datamodule(args.data)
    out = c.check_output(args.out or f"{prefix}-{datamodule.dataset_name}.pt", inputs=[args.data], overwrite=args.overwrite)
    c.check_output(f"{out}.sha256", inputs=[args.data], overwrite=args.overwrite)
    classifier = train(datamodule, args.epochs, args.lr, args.seed, args.device)
    return classifier, out, save(classifier, out)
