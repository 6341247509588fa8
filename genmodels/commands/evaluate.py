"""``genmodels evaluate``: FID / IS / KID / precision-recall of a checkpoint (`genmodels.metrics`).

Examples::

    genmodels evaluate --ckpt runs/dcgan/cifar10/checkpoints/last.ckpt --metrics fid,is,kid,pr \\
        --num-samples 50000 --out results.json
    genmodels evaluate --ckpt runs/dcgan/digits/checkpoints/last.ckpt --extractor classifier:lenet-digits.pt

The reference datamodule comes from ``<run>/config.yaml`` next to ``checkpoints/`` (or ``--config``);
real statistics are cached (``--cache-dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from genmodels.atomic import atomic_write_text
from genmodels.commands import common as c

NAME = "evaluate"
HELP = "FID / IS / KID / precision-recall of a checkpoint, optionally written as JSON"

#: Features kept per image by KID and precision-recall (InceptionV3 pool features; an upper bound
#: for the smaller classifier features).
_FEATURE_DIM = 2048


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="FID / IS / KID / precision-recall of a checkpoint.")
    c.add_ckpt(p, "training checkpoint (e.g. runs/x/checkpoints/last.ckpt) or `genmodels export` file")
    c.option(p, "--metrics", default="fid,is", help="comma-separated: fid,is,kid,pr (default fid,is)")
    c.add_num_samples(p, 50000, "generated images (>= 2)")
    c.option(p, "--extractor", default="inception", help="inception | classifier:PATH (default inception)")
    c.option(p, "--weights", default=None, metavar="PATH",
             help="InceptionV3 weights file (default: $GENMODELS_INCEPTION_WEIGHTS, else the torch hub cache)")
    c.option(p, "--extractor-sha256", default=None, metavar="HEX", help="pin the weights / classifier file to this SHA-256 (prefix)")
    c.option(p, "--config", default=None, metavar="YAML", help="config naming the datamodule (default: <ckpt dir>/../config.yaml)")
    c.option(p, "--split", default="train", choices=("train", "val", "test"), help="reference split (default train)")
    c.option(p, "--num-real", type=c.positive_int, default=None, metavar="N", help="real images (default: the whole split)")
    c.add_batch_size(p, 64)
    c.add_seed(p, "seed of the generated samples")
    c.add_device(p)
    c.option(p, "--cache-dir", default=None, metavar="DIR",
             help="real-statistics cache (default $GENMODELS_CACHE, else ~/.cache/genmodels/stats)")
    c.option(p, "--kid-subset-size", type=c.positive_int, default=1000, help="KID: images per subset (default 1000)")
    c.option(p, "--kid-subsets", type=c.positive_int, default=100, help="KID: number of subsets (default 100)")
    c.option(p, "--is-splits", type=c.positive_int, default=10, help="IS: splits of the samples (default 10)")
    c.option(p, "--pr-k", type=c.positive_int, default=3, help="precision-recall: k of the k-NN radii (default 3)")
    c.add_out(p, "write values and protocol to this JSON file", required=False)
    c.add_max_memory(p)
    return p


def check_request(args: argparse.Namespace) -> None:
    """What can be checked before the model, the extractor and the data are loaded."""
    if args.num_samples < 2:
        raise c.UserError(f"--num-samples must be >= 2, got {args.num_samples}")
    from genmodels.metrics.evaluator import parse_metrics
    from genmodels.metrics.modular import METRIC_CLASSES

    # Metrics that compare with every real feature (KID, precision-recall) keep every image's
    # features; the others keep running statistics or logits.
    every_feature = any(METRIC_CLASSES[name].reference == "features" for name in parse_metrics(args.metrics))
    kept = (args.num_samples + (args.num_real or 0)) if every_feature else 0
    batch = args.batch_size * 3 * 299 * 299 * 4 * 16  # one Inception batch with its activations
    c.check_memory(kept * _FEATURE_DIM * 4 + batch,
                   f"--num-samples {args.num_samples} with --metrics {args.metrics} and --batch-size {args.batch_size}",
                   "lower --num-samples (or --num-real, --batch-size)", args.max_memory_gb)


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_request(args)
    out = None if args.out is None else c.check_output(args.out, inputs=[args.ckpt, args.config], overwrite=args.overwrite,
                                                       suffixes=(".json",))
    record = evaluate(args)
    for name, value in record["values"].items():
        print(f"{name:24s} {value:.6g}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")
        print(f"results written to {out}")
    return record


def _progress(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing in batch-job logs.
    return tqdm(total=total, desc=description, unit="img", disable=None, file=sys.stderr, leave=False)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run an evaluation from parsed ``genmodels evaluate`` arguments; returns the JSON record."""
    import torch

    from genmodels.metrics.commands import load_datamodule, run_config
    from genmodels.metrics.evaluator import GenerativeEvaluator
    from genmodels.metrics.extractors import build_extractor

    started = time.perf_counter()
    ckpt = Path(args.ckpt)
    model = c.load_checkpoint_model(ckpt, args.device)
    extractor = build_extractor(args.extractor, args.weights, args.extractor_sha256)
    evaluator = GenerativeEvaluator(
        extractor, args.metrics, is_splits=args.is_splits, kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size, pr_k=args.pr_k,
    ).to(args.device)
    reference_record = None
    if evaluator.needs_reference:  # IS alone needs no real images, hence no datamodule
        config_path = run_config(ckpt, args.config)
        datamodule = load_datamodule(config_path)
        if tuple(model.image_shape) != tuple(datamodule.image_shape):
            raise c.UserError(
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


def _reference(evaluator: Any, datamodule: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from genmodels.metrics.reference import ReferenceImages, StatisticsCache, compute_reference, reference_key

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
