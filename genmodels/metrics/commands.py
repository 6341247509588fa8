"""The ``genmodels evaluate``, ``genmodels train-classifier`` and ``genmodels prefetch-weights`` commands.

Examples::

    # On a login node with internet: fetch and verify the Inception weights once.
    genmodels prefetch-weights --to /shared/weights
    export GENMODELS_INCEPTION_WEIGHTS=/shared/weights/weights-inception-2015-12-05-6726825d.pth

    # Score a checkpoint (the datamodule comes from <run>/config.yaml next to checkpoints/).
    genmodels evaluate --ckpt runs/dcgan/cifar10/checkpoints/last.ckpt --metrics fid,is,kid,pr \\
        --num-samples 50000 --out results.json

    # MNIST-like data: train a domain classifier and score with it (metrics named *_lenet).
    genmodels train-classifier --data experiments/dcgan/digits.yaml --epochs 20 --out lenet-digits.pt
    genmodels evaluate --ckpt runs/dcgan/digits/checkpoints/last.ckpt --extractor classifier:lenet-digits.pt

``cli.main`` prints FileNotFoundError and CheckpointError as ``genmodels: error: ...``; other bad
inputs (ValueError, ConnectionError) are printed here the same way, with exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import yaml

from genmodels.checkpoints import load_model
from genmodels.metrics.evaluator import GenerativeEvaluator
from genmodels.metrics.extractors import build_extractor
from genmodels.metrics.inception import (
    INCEPTION_SHA256_PREFIX,
    INCEPTION_URL,
    hub_weights_path,
    prefetch_inception_weights,
)
from genmodels.metrics.reference import ReferenceImages, StatisticsCache, compute_reference, reference_key

__all__ = ["evaluate_main", "train_classifier_main", "prefetch_weights_main", "evaluate", "load_datamodule"]

#: Only datamodules from this package are built from a config file (a config names a class to import).
ALLOWED_DATAMODULE_PACKAGE = "datamodules"


def _user_errors(function: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """Print a ValueError / ConnectionError like argparse does and exit with status 2."""

    @functools.wraps(function)
    def wrapper(argv: list[str]) -> Any:
        try:
            return function(argv)
        except (ValueError, ConnectionError) as err:
            print(f"genmodels: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing in batch-job logs.
    return tqdm(total=total, desc=description, unit="img", disable=None, file=sys.stderr, leave=False)


# ---------------------------------------------------------------------------------------------
# Datamodules from configs


def _data_section(config_path: Path) -> dict[str, Any]:
    """The ``data:`` section of an experiment YAML / resolved config, or the file itself."""
    if not config_path.is_file():
        raise FileNotFoundError(f"config file not found: {config_path}")
    config = yaml.safe_load(config_path.read_text()) or {}
    section = config.get("data", config) if isinstance(config, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("class_path"), str):
        raise ValueError(f"{config_path} has no datamodule (expected 'data: {{class_path: ..., init_args: ...}}')")
    return section


def load_datamodule(config_path: os.PathLike) -> Any:
    """Build the datamodule named by a config's ``data.class_path`` / ``init_args``.

    Only classes of the ``datamodules`` package are imported: a config file must not be able to
    make this command import arbitrary code.
    """
    section = _data_section(Path(config_path))
    class_path = section["class_path"]
    if "." not in class_path:
        class_path = f"{ALLOWED_DATAMODULE_PACKAGE}.{class_path}"
    module_name, _, class_name = class_path.rpartition(".")
    if module_name != ALLOWED_DATAMODULE_PACKAGE and not module_name.startswith(ALLOWED_DATAMODULE_PACKAGE + "."):
        raise ValueError(
            f"{config_path}: data.class_path {class_path!r} is outside the '{ALLOWED_DATAMODULE_PACKAGE}' package"
        )
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{config_path}: data.class_path {class_path!r} names no class")
    return cls(**(section.get("init_args") or {}))


def _run_config(ckpt: Path, config: Optional[str]) -> Path:
    if config is not None:
        return Path(config)
    candidate = ckpt.resolve().parent.parent / "config.yaml"
    if not candidate.is_file():
        raise FileNotFoundError(
            f"no run config at {candidate} (expected <run>/config.yaml next to <run>/checkpoints/); "
            "pass --config with the experiment YAML that names the datamodule"
        )
    return candidate


# ---------------------------------------------------------------------------------------------
# evaluate


def _evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genmodels evaluate", description="FID / IS / KID / precision-recall of a checkpoint."
    )
    p.add_argument("--ckpt", required=True, help="training checkpoint (e.g. runs/x/checkpoints/last.ckpt)")
    p.add_argument("--metrics", default="fid,is", help="comma-separated: fid,is,kid,pr (default fid,is)")
    p.add_argument("--num-samples", type=int, default=50000, help="generated images (default 50000)")
    p.add_argument("--extractor", default="inception", help="inception | classifier:PATH")
    p.add_argument("--weights", help="InceptionV3 weights file (else $GENMODELS_INCEPTION_WEIGHTS, hub cache)")
    p.add_argument("--extractor-sha256", help="pin the weights / classifier file to this SHA-256 (prefix)")
    p.add_argument("--config", default=None, help="config naming the datamodule (default: <ckpt dir>/../config.yaml)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"), help="reference split (default train)")
    p.add_argument("--num-real", type=int, default=None, help="real images (default: the whole split)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    p.add_argument("--device", default=_default_device())
    p.add_argument("--cache-dir", help="real-statistics cache (default $GENMODELS_CACHE, ~/.cache/genmodels/stats)")
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--is-splits", type=int, default=10)
    p.add_argument("--pr-k", type=int, default=3)
    p.add_argument("--out", default=None, help="write values and protocol to this JSON file")
    return p


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run an evaluation from parsed ``genmodels evaluate`` arguments; returns the JSON record."""
    if args.num_samples < 2 or args.batch_size < 1:
        raise ValueError(
            f"--num-samples must be >= 2 and --batch-size >= 1, got {args.num_samples} and {args.batch_size}"
        )
    started = time.perf_counter()
    ckpt = Path(args.ckpt)
    model = load_model(ckpt, map_location=args.device).to(args.device)
    extractor = build_extractor(args.extractor, args.weights, args.extractor_sha256)
    evaluator = GenerativeEvaluator(
        extractor, args.metrics, is_splits=args.is_splits, kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size, pr_k=args.pr_k,
    ).to(args.device)
    reference_record = None
    if evaluator.needs_reference:  # IS alone needs no real images, hence no datamodule
        config_path = _run_config(ckpt, args.config)
        datamodule = load_datamodule(config_path)
        if tuple(model.image_shape) != tuple(datamodule.image_shape):
            raise ValueError(
                f"the model generates {tuple(model.image_shape)} images but {config_path} gives "
                f"{tuple(datamodule.image_shape)}; pass --config with the datamodule the model was trained on"
            )
        reference, source = _reference(evaluator, datamodule, args)
        evaluator.set_reference(reference)
        reference_record = {
            "dataset": reference.key["dataset"],
            "split": args.split,
            "num_images": reference.n,
            "images_sha256": reference.key["images_sha256"],
            "source": source,
        }
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    with _progress(args.num_samples, "generated") as bar:
        evaluator.sample_from(model, args.num_samples, args.batch_size, generator, bar.update)
    values = evaluator.compute()
    protocol = {
        **evaluator.protocol(),
        "num_samples": args.num_samples,
        "sample_seed": args.seed,
        "image_shape": list(model.image_shape),
        "reference": reference_record,
        "checkpoint": str(ckpt),
        "iteration": int(model.iteration),
        "device": str(args.device),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return {"values": values, "protocol": protocol}


def _reference(evaluator: GenerativeEvaluator, datamodule: Any, args: argparse.Namespace) -> tuple[Any, str]:
    datamodule.setup({"train": "fit", "val": "validate", "test": "test"}[args.split])  # only what is needed
    images = ReferenceImages(datamodule, args.split, args.num_real)
    extractor = evaluator.extractor
    key = reference_key(images, extractor, evaluator.needs_reference_features)
    cache = StatisticsCache(args.cache_dir)
    cached = cache.load(key, need_features=evaluator.needs_reference_features)
    if cached is not None:
        return cached, "cache"
    with _progress(len(images), f"real ({args.split})") as bar:
        reference = compute_reference(extractor, images, key, args.batch_size, progress=bar.update)
    print(f"real statistics cached in {cache.save(reference)}", file=sys.stderr)
    return reference, "computed"


@_user_errors
def evaluate_main(argv: list[str]) -> dict[str, Any]:
    """``genmodels evaluate --ckpt PATH [--metrics fid,is,kid,pr] [--num-samples N] [--extractor ...] [--out F]``."""
    args = _evaluate_parser().parse_args(argv)
    record = evaluate(args)
    for name, value in record["values"].items():
        print(f"{name:24s} {value:.6g}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"results written to {out}")
    return record


# ---------------------------------------------------------------------------------------------
# train-classifier


@_user_errors
def train_classifier_main(argv: list[str]) -> str:
    """``genmodels train-classifier --data CONFIG [--epochs N] [--out PATH]``; returns the file's SHA-256."""
    from genmodels.metrics.classifier import save_classifier, train_classifier

    p = argparse.ArgumentParser(prog="genmodels train-classifier", description="Train the LeNet domain classifier.")
    p.add_argument(
        "--data", required=True, help="datamodule config: an experiment YAML (its data:) or {class_path, init_args}"
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=_default_device())
    p.add_argument("--out", default=None, help="output file (default lenet-<dataset>.pt)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    datamodule = load_datamodule(args.data)
    classifier = train_classifier(datamodule, args.epochs, args.lr, args.seed, args.device)
    out = Path(args.out or f"lenet-{classifier.meta['dataset']}.pt")
    digest = save_classifier(classifier, out)
    print(f"test accuracy {classifier.meta['test_accuracy']:.4f} on {classifier.meta['dataset']}")
    print(f"classifier written to {out}\nsha256 {digest}")
    print(f"use it with: --extractor classifier:{out}   (metrics named *_lenet)")
    return digest


# ---------------------------------------------------------------------------------------------
# prefetch-weights


@_user_errors
def prefetch_weights_main(argv: list[str]) -> Path:
    """``genmodels prefetch-weights [--to DIR]``: download and verify the Inception weights."""
    p = argparse.ArgumentParser(
        prog="genmodels prefetch-weights", description="Fetch and verify the InceptionV3 weights (needs network)."
    )
    hub = hub_weights_path().parent
    p.add_argument("--to", default=str(hub), help=f"folder (default: the torch hub cache, {hub})")
    p.add_argument("--url", default=INCEPTION_URL, help="source URL (a mirror)")
    p.add_argument("--sha256", default=INCEPTION_SHA256_PREFIX, help="expected SHA-256 or its prefix")
    args = p.parse_args(argv)
    path = prefetch_inception_weights(args.to, args.url, args.sha256)
    print(f"verified {path}")
    if path != hub_weights_path():
        print(f"use it with: export GENMODELS_INCEPTION_WEIGHTS={path}   (or --weights {path})")
    return path
