"""``genmodels serve``: the Streamlit explorer, or the HTTP generation API with ``--api`` (`genmodels.apps.serve`).

Examples::

    genmodels serve --ckpt runs/dcgan/digits/checkpoints/last.ckpt            # Streamlit, port 8501
    genmodels serve --ckpt last.ckpt --api --port 8000                       # FastAPI (uvicorn)

The checkpoint is opened (weights-only) before any server starts, so a file that is unsafe or not
a model is refused and nothing listens. Both bind to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "serve"
HELP = "serve a checkpoint: Streamlit explorer, or HTTP generation API with --api"


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in [1, 65535], got {value}")
    return value


_port.__name__ = "port"  # type: ignore[attr-defined]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Serve a checkpoint: Streamlit explorer, or HTTP API with --api.")
    c.add_ckpt(p)
    c.option(p, "--api", action="store_true", help="serve the FastAPI generation API instead of the Streamlit app")
    c.option(p, "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    c.option(p, "--port", type=_port, default=None, help="port (default 8000 for --api, 8501 for Streamlit)")
    c.add_device(p)
    c.option(p, "--threads", type=c.positive_int, default=None,
             help="torch CPU threads per generation (default: torch's choice; 1 suits small models on a busy CPU)")
    c.option(p, "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
             help="server log level (default info)")
    return p


def run(args: argparse.Namespace) -> None:
    import torch

    from genmodels.apps.serve import run_api, run_streamlit, streamlit_arguments, warn_if_exposed

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # Opened here even for Streamlit (whose script loads it again through the same safe loader):
    # an unsafe or wrong file is refused before anything listens.
    model = c.load_checkpoint_model(args.ckpt, args.device)
    warn_if_exposed(args.host)
    if args.api:
        run_api(model, Path(args.ckpt).name, args.host, args.port or 8000, args.log_level)
        return
    del model  # the app loads (and caches) its own copy
    run_streamlit(streamlit_arguments(args.ckpt, args.host, args.port or 8501, args.device, args.threads))
