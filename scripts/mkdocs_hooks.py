"""mkdocs hook: the site's home page is the README, with its `docs/` links made site-relative.

The README is the one entry page (GitHub shows it); copying it into docs/index.md would give two
texts to keep in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def on_page_read_source(page: Any, config: Any) -> str | None:
    if page.file.src_uri != "index.md":
        return None
    return README.read_text(encoding="utf-8").replace("](docs/", "](")
