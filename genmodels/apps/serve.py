"""``genmodels serve``: the HTTP API (``--api``) or the Streamlit explorer for a checkpoint.

Examples::

    genmodels serve --ckpt runs/dcgan/digits/checkpoints/last.ckpt            # Streamlit, port 8501
    genmodels serve --ckpt last.ckpt --api --port 8000                       # FastAPI (uvicorn)
    curl -X POST localhost:8000/generate -H 'content-type: application/json' -d '{"n": 16, "seed": 3}' -o grid.png

The checkpoint is opened (``weights_only=True``) before any server starts, so a file that is
unsafe or not a model is refused with a message and nothing listens. Both servers bind to
127.0.0.1 by default (neither has authentication); ``--host 0.0.0.0`` exposes them on purpose.
Streamlit runs in this process, headless, without usage statistics and without watching files;
the app gets the checkpoint on its command line (`streamlit_arguments`).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from genmodels.apps.commands import default_device, exit_on_value_error
from genmodels.apps.export import load_generative_model

__all__ = ["serve_main", "streamlit_arguments", "run_api", "run_streamlit", "STREAMLIT_APP"]

#: The Streamlit script ``genmodels serve`` runs.
STREAMLIT_APP = Path(__file__).with_name("streamlit_app.py")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels serve", description="Serve a checkpoint: Streamlit explorer, or HTTP API with --api.")
    p.add_argument("--ckpt", required=True, help="training checkpoint or `genmodels export` weights file")
    p.add_argument("--api", action="store_true", help="serve the FastAPI generation API instead of the Streamlit app")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000 for --api, 8501 for Streamlit)")
    p.add_argument("--device", default=default_device())
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per generation (default: torch's choice; 1 suits small models on a busy CPU)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    return p


def _warn_if_exposed(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(f"genmodels serve: warning: binding to {host}: the server has no authentication", file=sys.stderr)


def streamlit_arguments(
    ckpt: str, host: str = "127.0.0.1", port: int = 8501, device: str = "cpu", threads: Optional[int] = None
) -> list[str]:
    """The ``streamlit run ...`` arguments (after ``streamlit``) of the explorer for ``ckpt``."""
    extra = [] if threads is None else ["--threads", str(threads)]
    return [
        "run", str(STREAMLIT_APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--", "--ckpt", str(Path(ckpt).resolve()), "--device", device, *extra,
    ]  # fmt: skip


def run_api(model: Any, checkpoint: str, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve the FastAPI app for ``model`` with uvicorn until interrupted."""
    import uvicorn

    from genmodels.apps.api import create_app

    uvicorn.run(create_app(model, checkpoint), host=host, port=port, log_level=log_level)


def run_streamlit(arguments: list[str]) -> None:
    """Run Streamlit in this process (``streamlit <arguments>``) until it is stopped.

    In-process rather than ``python -m streamlit``: the app's imports (torch, genmodels) are then
    already loaded, which halves the time to the first page; Streamlit handles SIGTERM/Ctrl-C.
    """
    from streamlit.web import cli

    cli.main(arguments, prog_name="streamlit", standalone_mode=False)


@exit_on_value_error("genmodels serve")
def serve_main(argv: list[str]) -> None:
    """``genmodels serve --ckpt PATH [--api] [--host 127.0.0.1] [--port P]``."""
    args = _parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    # Opened here even for Streamlit (whose script loads it again through the same safe loader):
    # an unsafe or wrong file is refused before anything listens.
    model = load_generative_model(args.ckpt, args.device)
    _warn_if_exposed(args.host)
    if args.api:
        run_api(model, Path(args.ckpt).name, args.host, args.port or 8000, args.log_level)
        return
    del model  # the app loads (and caches) its own copy
    run_streamlit(streamlit_arguments(args.ckpt, args.host, args.port or 8501, args.device, args.threads))
