"""``genmodels fit|validate|test --help`` from a cache: LightningCLI's help without importing torch.

The full help of the three LightningCLI commands is jsonargparse's rendering of every model, data and
trainer option, so printing it live means importing torch and Lightning (about 5 s on an idle 2-core
machine). The text is a pure function of the sources and libraries that produce it, so it is kept
after the first live rendering under a key that covers all of them:

- the bytes of every ``.py`` file of the ``genmodels`` and ``datamodules`` packages (an edited model
  option, a new datamodule: another key);
- the installed versions of Lightning, jsonargparse, torch and Python;
- the terminal width argparse wraps to, and the environment variables jsonargparse reads.

A stale text can therefore never be printed: any change misses the cache, and the next ``--help``
renders live and stores the new text. Only the exact request ``genmodels CMD --help`` (or ``-h``)
is served from the cache. The cache lives in ``$XDG_CACHE_HOME/genmodels/help`` (default
``~/.cache/genmodels/help``); an unwritable one only costs the speed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

HELP_FLAGS = (["--help"], ["-h"])
#: The libraries whose versions change the rendered text (the first installed name of each).
LIBRARIES = (("pytorch-lightning", "lightning"), ("jsonargparse",), ("torch",), ("docstring-parser",), ("typeshed-client",))
#: Source packages whose classes and docstrings the help lists.
PACKAGES = ("genmodels", "datamodules")
#: Bump when the cached file's layout or meaning changes.
FORMAT_VERSION = 1


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "genmodels" / "help"


def is_help_request(argv: list[str]) -> bool:
    return argv in HELP_FLAGS


def _installed(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{names[0]} absent"


def _package_root(name: str) -> Optional[Path]:
    # The package's folder without importing it: genmodels and datamodules sit side by side.
    root = Path(__file__).resolve().parents[2] / name
    return root if root.is_dir() else None


def key(command: str) -> str:
    """The hash of everything the help text of ``genmodels COMMAND --help`` depends on."""
    digest = hashlib.sha256(f"v{FORMAT_VERSION} {command} {sys.version_info[:3]}".encode())
    for names in LIBRARIES:
        digest.update(_installed(names).encode())
    digest.update(f"columns={shutil.get_terminal_size().columns}".encode())
    for name, value in sorted(os.environ.items()):
        if name.startswith("JSONARGPARSE") or name.startswith("PL_"):
            digest.update(f"{name}={value}".encode())
    for package in PACKAGES:
        root = _package_root(package)
        if root is None:
            digest.update(f"{package} absent".encode())
            continue
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _path(command: str, digest: str) -> Path:
    return cache_dir() / f"{command}-{digest}.txt"


def lookup(command: str, digest: Optional[str] = None) -> Optional[str]:
    """The cached help of ``command`` for the present sources and libraries (or ``digest``), or None."""
    try:
        return _path(command, digest or key(command)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def store(command: str, text: str, digest: Optional[str] = None) -> None:
    """Keep ``text`` under the present key (or ``digest``) and drop the command's older entries (best effort)."""
    from genmodels.atomic import atomic_write_text

    path = _path(command, digest or key(command))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        for old in path.parent.glob(f"{command}-*.txt"):
            if old != path:
                old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs the next --help its speed
        pass


def print_help(command: str, render: Callable[[], object]) -> None:
    """Print the help of ``command``: cached, or rendered live by ``render`` (which prints it and
    exits 0, as argparse's help action does) and then stored. Exits 0 like the live help."""
    digest = key(command)  # hashed once: the text rendered on a miss is stored under the key it was looked up by
    text = lookup(command, digest)
    if text is None:
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                render()
        except SystemExit as exit:
            if exit.code not in (0, None):  # a failure is shown as it was printed, never stored
                sys.stdout.write(buffer.getvalue())
                raise
        text = buffer.getvalue()
        if text:
            store(command, text, digest)
    sys.stdout.write(text)
    sys.stdout.flush()
    raise SystemExit(0)
