"""``genmodels fit``: LightningCLI's fit (`genmodels.cli.GenModelsCLI`)."""

from __future__ import annotations

from genmodels.commands import _lightning

NAME = "fit"
HELP = "train a model from an experiment YAML (LightningCLI), with run directory, resume and W&B logging"
DESCRIPTION = (
    "Train a model: `genmodels fit --config experiments/<model>/<dataset>.yaml`. A fresh run refuses a run "
    "directory that already holds checkpoints; `--ckpt_path last` resumes."
)
RAW_ARGV = True  # LightningCLI parses the arguments itself


add_parser, run_argv, run = _lightning.command(NAME, HELP, DESCRIPTION)
