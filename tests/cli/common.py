"""Running the genmodels CLI in-process with tiny overrides."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from genmodels import DCGAN, GAN
from genmodels.commands import main

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"

# Shrinks any experiment to seconds on a CPU (applied after the YAML).
TINY = [
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.accelerator", "cpu",
    "--trainer.log_every_n_steps", "2",
    "--sample_grid.num_samples", "4",
]
#: Model arguments the CLI takes from the datamodule (`image_shape`, `vocab`: linked) or that the
#: experiment YAML sets to the dataset's value (`num_classes`): `tiny()`'s values are not given for them.
FROM_DATA = {"image_shape", "vocab", "num_classes"}
#: Per family, the overrides of the data and callbacks that a tiny model needs (model sizes come from tiny()).
TINY_DIR = Path(__file__).parent / "tiny"


def model_tiny_args(model_class: Any) -> list[str]:
    """``model_class.tiny()`` as ``--model.init_args.NAME VALUE`` overrides (values in YAML syntax)."""
    args = []
    for name, value in model_class.tiny().items():
        if name not in FROM_DATA:
            args += [f"--model.init_args.{name}", json.dumps(list(value) if isinstance(value, tuple) else value)]
    return args


def tiny_args(config: str) -> list[str]:
    """The overrides that shrink ``experiments/<config>``: its model's `tiny()`, then ``tiny/<family>.yaml``."""
    class_path = yaml.safe_load((EXPERIMENTS / config).read_text())["model"]["class_path"]
    module, name = class_path.rsplit(".", 1)
    extra = TINY_DIR / f"{config.split('/')[0]}.yaml"
    return model_tiny_args(getattr(importlib.import_module(module), name)) + (
        [str(a) for a in yaml.safe_load(extra.read_text())] if extra.is_file() else [])


TINY_DCGAN = model_tiny_args(DCGAN)
TINY_GAN = model_tiny_args(GAN)


def fit(config: str | Path, run_dir: Path, *extra: str) -> None:
    main(["fit", "--config", str(EXPERIMENTS / config), "--trainer.default_root_dir", str(run_dir), *TINY, *extra])


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
