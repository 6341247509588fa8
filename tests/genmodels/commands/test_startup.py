"""Start-up: help and --version print without importing torch, Lightning or wandb (seconds each)."""

from __future__ import annotations

import json
import subprocess
import sys

from genmodels.commands import main
from tests.cli.common import ROOT

# One fresh interpreter prints every help page and reports which heavy modules got imported.
_PROBE = """
import json, sys
from genmodels.commands import COMMANDS, main
heavy = ("torch", "pytorch_lightning", "lightning", "wandb", "numpy", "PIL")
report = {}
for argv in [["--help"], ["--version"]] + [[n.replace("_", "-"), "--help"] for n in COMMANDS]:
    if argv[0] in ("fit", "validate", "test"):
        continue  # LightningCLI's own parser lists every model and trainer option: it needs them
    try:
        main(argv)
    except SystemExit as exit:
        assert exit.code in (0, None), (argv, exit.code)
    report[" ".join(argv)] = [m for m in heavy if m in sys.modules]
print(json.dumps(report))
"""


def test_help_and_version_import_no_heavy_module():
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report) >= 20 and "sample --help" in report
    assert {argv: modules for argv, modules in report.items() if modules} == {}


def test_version_prints_the_distribution_version(capsys):
    from genmodels.commands import version

    try:
        main(["--version"])
    except SystemExit as exit:
        assert exit.code == 0
    assert capsys.readouterr().out.strip() == f"genmodels {version()}"
    assert version()[0].isdigit()


def test_device_auto_resolves_after_parsing():
    import argparse

    from genmodels.commands.common import resolve_device

    args = argparse.Namespace(device="auto")
    resolve_device(args)
    import torch

    assert args.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_anomaly_command_offers_the_app_scores():
    from genmodels.apps.anomaly import SCORES
    from genmodels.commands import anomaly

    assert anomaly.SCORES == SCORES
