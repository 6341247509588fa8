"""``genmodels prefetch-weights``: download and verify the InceptionV3 weights once (needs network).

Example (on a login node with internet)::

    genmodels prefetch-weights --out /shared/weights
    export GENMODELS_INCEPTION_WEIGHTS=/shared/weights/weights-inception-2015-12-05-6726825d.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "prefetch-weights"
HELP = "download and verify the InceptionV3 weights of FID/IS/KID (needs network)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Fetch and verify the InceptionV3 weights (needs network).")
    c.option(p, "--out", default=None, metavar="DIR", aliases=("--to",),
             help="folder to put the weights in (default: the torch hub cache)")
    c.option(p, "--url", default=None, help="source URL (a mirror); file:// works too (default: the torch-fidelity v0.2.0 release)")
    c.option(p, "--sha256", default=None, metavar="HEX", help="expected SHA-256 or its prefix (default: that release's)")
    return p


def run(args: argparse.Namespace) -> Path:
    # Imported here, not in add_parser: `--help` must not pay for torch (scripts/bench_startup.py).
    from genmodels.metrics.inception import (
        INCEPTION_SHA256_PREFIX, INCEPTION_URL, hub_weights_path, prefetch_inception_weights,
    )

    folder = Path(args.out) if args.out is not None else hub_weights_path().parent
    if folder.exists() and not folder.is_dir():
        raise c.UserError(f"--out {folder} is a file; give a folder")
    c.check_output_dir(folder, flag="--out")  # an existing verified file is kept: nothing is overwritten blindly
    path = prefetch_inception_weights(folder, args.url or INCEPTION_URL, args.sha256 or INCEPTION_SHA256_PREFIX)
    print(f"verified {path}")
    if path != hub_weights_path():
        print(f"use it with: export GENMODELS_INCEPTION_WEIGHTS={path}   (or --weights {path})")
    return path
