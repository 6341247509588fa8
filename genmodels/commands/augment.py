"""``genmodels augment``: does adding generated images help a classifier trained on little real data? (`genmodels.apps.augment`)

Example::

    genmodels augment --ckpt runs/cgan/digits/checkpoints/last.ckpt --data digits --real-fraction 0.1 --out augment.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from genmodels.atomic import atomic_write_text
from genmodels.commands import common as c

NAME = "augment"
HELP = "classifier accuracy with real vs real + generated training data"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Real vs real + generated training data for a classifier.")
    c.add_ckpt(p, "generator checkpoint (class-conditional, or give --labeler)", aliases=("--gen",))
    c.option(p, "--data", required=True, help="datamodule name (digits, mnist, ...) or an experiment/config YAML")
    c.option(p, "--data-dir", default=None, metavar="DIR", help="data root for a datamodule given by name")
    c.option(p, "--real-fraction", type=c.fraction, default=0.1, help="share of the real train split kept, in (0, 1] (default 0.1)")
    c.option(p, "--num-generated", type=c.nonnegative_int, default=None, metavar="N",
             help="generated images (default: the real images left out)")
    c.option(p, "--labeler", default=None, metavar="PATH",
             help="classifier file (genmodels train-classifier) labelling an unconditional generator's images")
    c.option(p, "--truncation", type=c.positive_float, default=None, metavar="PSI", help="truncation psi for the generated images")
    c.option(p, "--steps", type=c.positive_int, default=500, help="optimizer steps per classifier (default 500)")
    c.add_batch_size(p, 64)
    c.option(p, "--lr", type=c.positive_float, default=1e-3, help="classifier learning rate (default 0.001)")
    c.option(p, "--repeats", type=c.positive_int, default=3, help="classifier seeds per row (default 3)")
    c.add_seed(p)
    c.add_device(p)
    c.add_out(p, "also write the rows and protocol as JSON", required=False)
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> Any:
    from genmodels.apps.augment import format_table, resolve_datamodule, run_augmentation

    out = None if args.out is None else c.check_output(args.out, inputs=[args.ckpt, args.labeler, args.data],
                                                       overwrite=args.overwrite, suffixes=(".json",))
    model = c.load_checkpoint_model(args.ckpt, args.device)
    if args.num_generated is not None:  # generated images are kept (uint8) for the whole run
        c.check_memory(c.image_bytes(model.image_shape, args.num_generated, 1) + c.image_bytes(model.image_shape, args.batch_size, 4),
                       f"--num-generated {args.num_generated} images of {c.shape_text(model.image_shape)}",
                       "lower --num-generated", args.max_memory_gb)
    labeler = None
    if args.labeler is not None:
        from genmodels.metrics.classifier import load_classifier  # weights_only, pinned by its sidecar hash

        labeler = load_classifier(args.labeler, map_location=args.device)
    datamodule = resolve_datamodule(args.data, model.image_shape[1], args.data_dir)
    result = run_augmentation(
        model, datamodule, args.real_fraction, args.num_generated, args.steps, args.batch_size, args.lr,
        args.repeats, args.seed, args.truncation, labeler, args.device,
    )  # fmt: skip
    print(format_table(result))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [dict(asdict(r), mean=r.mean, std=r.std) for r in result.rows]
        atomic_write_text(out, json.dumps({"rows": rows, "protocol": result.protocol}, indent=2) + "\n")
        print(f"results written to {out}")
    return result
