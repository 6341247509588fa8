"""Running the genmodels CLI in-process with tiny overrides."""

from __future__ import annotations

from pathlib import Path

import torch

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
TINY_DCGAN = ["--model.init_args.feature_maps", "4", "--model.init_args.latent_dim", "8"]
TINY_GAN = [
    "--model.init_args.latent_dim", "8",
    "--model.init_args.generator_hidden", "[16]",
    "--model.init_args.discriminator_hidden", "[16]",
]


def fit(config: str | Path, run_dir: Path, *extra: str) -> None:
    main(["fit", "--config", str(EXPERIMENTS / config), "--trainer.default_root_dir", str(run_dir), *TINY, *extra])


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
