"""Exact resume of the autoencoder family through the CLI, view callbacks included."""

from pathlib import Path

import pytest
import yaml

from tests.cli.common import EXPERIMENTS, fit, load
from tests.cli.test_resume import _assert_states_equal

N = 4
# 1,617 digits at batch 256: N = 4 stops mid-epoch, the resumed half crosses an epoch boundary with
# a validation pass. The view callbacks write every 2 iterations; each process fetches its view
# images once (at 2 in the straight run, at 2 and again at 6 in the resumed one), so a fetch that
# moved the training RNG (the VAE's eps comes from it) would make the runs differ.
ARGS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "256",
        "--trainer.check_val_every_n_epoch", "1", "--checkpoint.every_n_iterations", "3",
        "--sample_grid.every_n_iterations", "4", "--model.init_args.hidden_channels", "[4, 8]",
        "--model.init_args.latent_dim", "4", "--trainer.logger", "false"]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["vae/digits.yaml", "ae/digits.yaml"])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, config: str):
    experiment = yaml.safe_load((EXPERIMENTS / config).read_text())
    for callback in experiment["trainer"]["callbacks"]:
        callback["init_args"]["every_n_iterations"] = 2
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump(experiment))
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(config, straight, "--max_iterations", str(2 * N), *ARGS)
    fit(config, resumed, "--max_iterations", str(N), *ARGS)
    fit(config, resumed, "--max_iterations", str(2 * N), "--ckpt_path", "last", *ARGS)
    assert sorted(p.name for p in (resumed / "reconstructions").iterdir()) == [f"iter_0000000{i}.png" for i in (2, 4, 6, 8)]

    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["genmodels"]["iteration"] == b["genmodels"]["iteration"] == 2 * N
    _assert_states_equal(a["state_dict"], b["state_dict"], "state_dict")  # incl. the AE's code moments
    _assert_states_equal(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    _assert_states_equal(a["genmodels"]["torch_rng"], b["genmodels"]["torch_rng"], "rng")
