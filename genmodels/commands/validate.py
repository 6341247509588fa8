"""``genmodels validate``: LightningCLI's validate (`genmodels.cli.GenModelsCLI`)."""

from __future__ import annotations

from genmodels.commands import _lightning

NAME = "validate"
HELP = "run the validation loop (and its metrics) of a checkpoint on the experiment's data"
DESCRIPTION = (
    "Validate a checkpoint: `genmodels validate --config <experiment>.yaml --ckpt_path <ckpt>`."
)
RAW_ARGV = True  # LightningCLI parses the arguments itself


add_parser, run_argv, run = _lightning.command(NAME, HELP, DESCRIPTION)
