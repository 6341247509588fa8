"""`genmodels sweep`: W&B sweep files expanded and run locally or as a SLURM array."""

import time
from pathlib import Path

import pytest
import torch

from genmodels.commands import main
from genmodels.sweep import expand, load_sweep
from tests.cli.common import ROOT

SWEEPS = ROOT / "experiments" / "sweeps"


def test_grid_is_the_cartesian_product_and_random_is_seeded():
    grid = expand(load_sweep(SWEEPS / "wgan_gp_digits_grid.yaml"))
    assert len(grid) == 8 and len({tuple(sorted(c.items())) for c in grid}) == 8
    spec = load_sweep(SWEEPS / "dcgan_digits_random.yaml")
    first, again = expand(spec, count=5, seed=3), expand(spec, count=5, seed=3)
    assert first == again and len(first) == 5
    assert all(5e-5 <= c["model.init_args.lr_g"] <= 1e-3 and c["model.init_args.ema_decay"] in (0.99, 0.999) for c in first)


def test_slurm_array_has_one_task_per_combination(tmp_path, capsys):
    out = tmp_path / "array.sh"
    main(["sweep", str(SWEEPS / "wgan_gp_digits_grid.yaml"), "--slurm-array", str(out), "--root", str(tmp_path / "r")])
    text = out.read_text()
    assert "#SBATCH --array=0-7" in text and text.count("python -m genmodels fit") == 8
    assert "--model.init_args.n_critic=5" in text and str(tmp_path / "r" / "007") in text


def test_sweep_runs_each_combination_in_its_own_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # local_args name the config relative to the repository
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        "method: grid\nparameters:\n  model.init_args.lr_d:\n    values: [0.0001, 0.001]\n"
        "local_args: [--config, experiments/gan/digits.yaml]\n"
    )
    extra = ("--max_iterations 2 --model.init_args.latent_dim 4 --model.init_args.generator_hidden [8] "
             "--model.init_args.discriminator_hidden [8] --data.init_args.image_size 8 --trainer.logger false "
             "--trainer.enable_progress_bar false --sample_grid.every_n_iterations 0")
    main(["sweep", str(sweep), "--root", str(tmp_path / "runs"), "--extra", extra])
    lrs = [torch.load(tmp_path / f"runs/{i:03d}/checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]["lr_d"]
           for i in (0, 1)]
    assert lrs == [pytest.approx(1e-4), pytest.approx(1e-3)]


def test_bundled_sweeps_optimise_a_metric_their_runs_log():
    from genmodels.sweep import _config_files, generative_metric_keys

    for path in sorted(p for p in SWEEPS.glob("*.yaml") if "parameters:" in p.read_text()):
        spec = load_sweep(path)  # checks it
        assert spec["metric"]["name"] in generative_metric_keys([ROOT / c for c in _config_files(spec)]), path


def test_a_sweep_on_a_metric_its_config_never_logs_is_refused(tmp_path, monkeypatch):
    import yaml

    spec = yaml.safe_load((SWEEPS / "dcgan_digits_random.yaml").read_text())
    spec["local_args"] = spec["local_args"][:2]  # without the metrics config
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match="val/fid_lenet.*never logged"):
        load_sweep(path)
    spec["metric"]["name"] = "val/fid_inception"  # logged by no bundled config either
    spec["local_args"] = [*spec["local_args"], "--config", "experiments/sweeps/with_fid_lenet.yaml"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match="they log val/fid_lenet"):
        load_sweep(path)


@pytest.mark.slow
def test_a_wandb_agent_run_gets_its_own_directory_and_the_agents_run_id(tmp_path, monkeypatch):
    from tests.cli.common import TINY, TINY_DCGAN
    from tests.wandb_records import run_ids, wait_until_closed

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_SWEEP_ID", "swp12345")
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun1")
    # What `wandb agent` runs: the sweep's command with ${args} as --key=value.
    main(["fit", "--config", str(ROOT / "experiments/dcgan/digits.yaml"), *TINY, *TINY_DCGAN,
          "--data.init_args.image_size=16", "--model.init_args.lr_g=0.0003", "--max_iterations=2"])
    run = tmp_path / "runs/sweeps/swp12345/agentrun1"
    assert (run / "checkpoints/last.ckpt").is_file()
    assert (run / "wandb_run_id").read_text().strip() == "agentrun1"
    segments = list(run.glob("wandb/offline-run-*"))
    assert [s.name.rsplit("-", 1)[-1] for s in segments] == ["agentrun1"]
    log = segments[0] / "run-agentrun1.wandb"
    deadline = time.monotonic() + 60  # wandb's service may still be writing it under load
    while not log.is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    wait_until_closed(log)
    assert run_ids(log) == {"agentrun1"}
