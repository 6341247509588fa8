"""`genmodels sweep`: W&B sweep files expanded and run locally or as a SLURM array."""

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
