"""``genmodels import-weights``: the authors' checkpoints -> a genmodels model file (`genmodels.weights`).

Examples::

    genmodels import-weights stylegan2-ada network-snapshot-025000.pkl --out cifar10.pt
    genmodels import-weights biggan-pytorch G.pth G_ema.pth D.pth --out biggan.pt --option key=value

The file holds every network (G, its EMA, D) in the weights-only format of ``genmodels export``: any
``--ckpt`` accepts it, and ``genmodels fit --init_weights FILE`` fine-tunes from it.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from genmodels.commands import common as c
from genmodels.errors import UserError

NAME = "import-weights"
HELP = "convert the authors' published checkpoints (StyleGAN2-ADA, BigGAN, CycleGAN, ...) into a genmodels model file"


def _formats() -> list[str]:
    from genmodels.weights import FORMATS

    return sorted(FORMATS)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        NAME, help=HELP,
        description="Convert checkpoints saved by the authors' code into a genmodels model file that every --ckpt accepts. "
        "Architecture settings come from the files; what they do not record is asked for with --option key=value. "
        "NVlabs pickles are read without running the code they embed.",
    )
    p.add_argument("format", choices=_formats(), metavar="FORMAT", help=f"source format: {', '.join(_formats())}")
    p.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="the checkpoint file(s) as the authors' code saved them")
    c.add_out(p, "output model file (.pt); every --ckpt accepts it, fit --init_weights fine-tunes from it")
    c.option(p, "--option", action="append", default=[], metavar="KEY=VALUE",
             help="a setting the sources do not record (repeatable; YAML values), e.g. --option penalty_weight=0.01")
    return p


def parse_options(items: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r}: give key=value")
        if key.strip() in options:
            raise UserError(f"--option {key.strip()} given twice")
        options[key.strip()] = value.strip()
    return options


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> Path:
    for source in args.sources:
        if not source.is_file():
            raise UserError(f"SRC {source} is not a file")
    out = c.check_output(args.out, inputs=args.sources, overwrite=args.overwrite, suffixes=(".pt", ".pth", ".ckpt"))
    options = parse_options(args.option)
    from genmodels.weights import converter

    model = converter(args.format).convert(args.format, list(args.sources), options)
    from genmodels.apps.export import export_weights

    provenance = {"imported_from": {"format": args.format, "files": [{"name": s.name, "sha256": _sha256(s)} for s in args.sources],
                                    "options": options}}
    path = export_weights(model, out, keep_training_networks=True, extra=provenance)
    print(f"{args.format} -> {type(model).__name__} {tuple(model.image_shape)} -> {path} "
          "(use it as --ckpt; fine-tune with genmodels fit --init_weights)")
    return path
