"""Datamodules from config files, for the commands that need data (`genmodels.commands`).

``genmodels evaluate``, ``train-classifier``, ``train-attributes`` and ``augment`` build the
datamodule a config names through `load_datamodule` (`genmodels.resolve.build_datamodule`: class
names are resolved against an allowlist as text, so a config file cannot make a command import code).
The command-line code itself lives in `genmodels.commands`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from genmodels.errors import MissingFile

__all__ = ["load_datamodule", "run_config"]


# ---------------------------------------------------------------------------------------------
# Datamodules from configs


def load_datamodule(config_path: os.PathLike) -> Any:
    """Build the datamodule named by a config's ``data.class_path`` / ``init_args``.

    `genmodels.resolve.build_datamodule`: every class name is checked against the allowlist as
    text before anything is imported, so a config file cannot make this command import code.
    """
    from genmodels.resolve import build_datamodule

    return build_datamodule(Path(config_path))


def run_config(ckpt: Path, config: Optional[str]) -> Path:
    """``--config``, else the run's ``config.yaml`` next to the checkpoint's ``checkpoints/`` folder."""
    if config is not None:
        return Path(config)
    candidate = ckpt.resolve().parent.parent / "config.yaml"
    if not candidate.is_file():
        raise MissingFile(
            f"no run config at {candidate} (expected <run>/config.yaml next to <run>/checkpoints/); "
            "pass --config with the experiment YAML that names the datamodule"
        )
    return candidate
