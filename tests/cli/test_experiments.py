"""Every YAML in experiments/ instantiates as written and trains a few iterations when shrunk.

Shrinking: the model class's ``tiny()`` gives its sizes as ``--model.init_args.*`` overrides and
``tests/cli/tiny/<family>.yaml`` the data and callback overrides some families need
(`tests.cli.common.tiny_args`); data that must be on disk is written by
``tests.datamodules.formats.experiment_fixture_<dataset>(root) -> list of CLI args``.
"""

from pathlib import Path

import pytest
import torch

from genmodels.cli import GenModelsCLI
from tests.cli.common import EXPERIMENTS, fit, load, tiny_args
from tests.datamodules import formats

CONFIGS = sorted(p.relative_to(EXPERIMENTS).as_posix() for p in EXPERIMENTS.rglob("*.yaml") if p.parent.name != "sweeps")


def _tiny_args(config: str) -> list[str]:
    return tiny_args(config)


def _data_args(config: str, tmp_path: Path) -> list[str]:
    dataset = Path(config).stem.split("_")[0]
    writer = getattr(formats, f"experiment_fixture_{dataset}", None)
    return writer(tmp_path / "data") if writer else []


def test_every_model_and_dataset_has_an_experiment():
    assert {"gan/digits.yaml", "gan/mnist.yaml", "dcgan/digits.yaml", "dcgan/mnist.yaml", "dcgan/cifar10.yaml",
            "wgan/mnist.yaml", "wgan_gp/digits.yaml", "wgan_gp/mnist.yaml", "wgan_gp/cifar10.yaml",
            "dcgan/cifar10_hinge_sn.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("config", CONFIGS)
def test_experiment_instantiates_as_written(config):
    cli = GenModelsCLI(args=["--config", str(EXPERIMENTS / config), "--trainer.logger", "false"], run=False)
    c, h, w = cli.datamodule.image_shape
    assert cli.model.image_shape == (c, h, w)  # linked, never repeated in the YAML
    with torch.no_grad():
        assert cli.model.eval().sample(2).shape == (2, c, h, w)


@pytest.mark.parametrize("config", CONFIGS)
def test_experiment_trains_a_few_iterations(config, tmp_path):
    run = tmp_path / "run"
    fit(config, run, *_tiny_args(config), *_data_args(config, tmp_path), "--data.init_args.batch_size", "8",
        "--max_iterations", "3")
    checkpoint = load(run / "checkpoints/last.ckpt")
    assert checkpoint["genmodels"]["iteration"] == 3
    assert (run / "config.yaml").is_file() and (run / "samples/iter_00000003.png").is_file()


# One experiment per model family (the first file of each folder): enough to run each family's
# training step under autocast, which is what mixed precision changes.
FAMILY_CONFIGS = sorted({config.split("/")[0]: config for config in reversed(CONFIGS)}.values())


@pytest.mark.parametrize("config", FAMILY_CONFIGS)
def test_every_model_family_trains_in_bf16_mixed_precision(config, tmp_path):
    run = tmp_path / "run"
    fit(config, run, *_tiny_args(config), *_data_args(config, tmp_path), "--data.init_args.batch_size", "8",
        "--max_iterations", "2", "--trainer.precision", "bf16-mixed")
    checkpoint = load(run / "checkpoints/last.ckpt")
    assert checkpoint["genmodels"]["iteration"] == 2
    weights = {k: v for k, v in checkpoint["state_dict"].items() if v.is_floating_point()}
    assert weights and all(v.dtype == torch.float32 for v in weights.values())  # master weights stay fp32
    assert all(torch.isfinite(v).all() for v in weights.values()), "non-finite weights after bf16 steps"
