"""The cluster launchers keep the settings that make requeue and resume work."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sbatch_options(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text().splitlines():
        match = re.match(r"#SBATCH --([\w-]+)(?:=(\S+))?", line)
        if match:
            options[match.group(1)] = match.group(2) or ""
    return options


def test_sbatch_requeues_on_signal_and_matches_tasks_to_gpus():
    script = ROOT / "scripts/slurm/train.sbatch"
    options = _sbatch_options(script)
    assert options["signal"] == "SIGUSR1@90" and "requeue" in options
    assert options["ntasks-per-node"] == options["gpus-per-node"]
    text = script.read_text()
    assert "srun" in text and "--ckpt_path last" in text and '--trainer.default_root_dir "$RUN_DIR"' in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_torchrun_example_resumes_from_a_stable_directory():
    text = (ROOT / "scripts/torchrun_train.sh").read_text()
    assert "torchrun" in text and "--ckpt_path last" in text and "--trainer.num_nodes" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts/torchrun_train.sh")]).returncode == 0
