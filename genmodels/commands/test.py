"""``genmodels test``: LightningCLI's test (`genmodels.cli.GenModelsCLI`)."""

from __future__ import annotations

from genmodels.commands import _lightning

NAME = "test"
HELP = "run the test loop of a checkpoint on the experiment's test split"
DESCRIPTION = (
    "Test a checkpoint: `genmodels test --config <experiment>.yaml --ckpt_path <ckpt>`."
)
RAW_ARGV = True  # LightningCLI parses the arguments itself


add_parser, run_argv, run = _lightning.command(NAME, HELP, DESCRIPTION)
