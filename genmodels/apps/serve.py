"""What ``genmodels serve`` (`genmodels.commands.serve`) runs: the HTTP API or the Streamlit explorer.

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

import ipaddress
import sys
from pathlib import Path
from typing import Any, Optional

__all__ = ["streamlit_arguments", "run_api", "run_streamlit", "warn_if_exposed", "STREAMLIT_APP"]

#: The Streamlit script ``genmodels serve`` runs.
STREAMLIT_APP = Path(__file__).with_name("streamlit_app.py")


def warn_if_exposed(host: str) -> None:
    """Say on stderr that a server bound beyond loopback has no authentication."""
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
