"""Datamodules from config files, for the commands that need data (`genmodels.commands`).

``genmodels evaluate``, ``train-classifier``, ``train-attributes`` and ``augment`` build the
datamodule a config names through `load_datamodule`, which imports only classes of the
``datamodules`` package: a config file must not be able to make a command import arbitrary code.
The command-line code itself lives in `genmodels.commands`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Optional

import yaml

from genmodels.errors import InvalidValue, MissingFile

__all__ = ["load_datamodule", "run_config", "ALLOWED_DATAMODULE_PACKAGE"]

#: Only datamodules from this package are built from a config file (a config names a class to import).
ALLOWED_DATAMODULE_PACKAGE = "datamodules"


# ---------------------------------------------------------------------------------------------
# Datamodules from configs


def _data_section(config_path: Path) -> dict[str, Any]:
    """The ``data:`` section of an experiment YAML / resolved config, or the file itself."""
    if not config_path.is_file():
        raise MissingFile(f"config file not found: {config_path}")
    config = yaml.safe_load(config_path.read_text()) or {}
    section = config.get("data", config) if isinstance(config, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("class_path"), str):
        raise InvalidValue(f"{config_path} has no datamodule (expected 'data: {{class_path: ..., init_args: ...}}')")
    return section


def load_datamodule(config_path: os.PathLike) -> Any:
    """Build the datamodule named by a config's ``data.class_path`` / ``init_args``.

    Only classes of the ``datamodules`` package are imported: a config file must not be able to
    make this command import arbitrary code.
    """
    section = _data_section(Path(config_path))
    class_path = section["class_path"]
    if "." not in class_path:
        class_path = f"{ALLOWED_DATAMODULE_PACKAGE}.{class_path}"
    module_name, _, class_name = class_path.rpartition(".")
    if module_name != ALLOWED_DATAMODULE_PACKAGE and not module_name.startswith(ALLOWED_DATAMODULE_PACKAGE + "."):
        raise InvalidValue(
            f"{config_path}: data.class_path {class_path!r} is outside the '{ALLOWED_DATAMODULE_PACKAGE}' package"
        )
    # getattr: importing an allowlisted class by name: the lookup itself.
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not isinstance(cls, type):
        raise InvalidValue(f"{config_path}: data.class_path {class_path!r} names no class")
    return cls(**(section.get("init_args") or {}))


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
