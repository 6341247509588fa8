"""Every YAML in experiments/ instantiates as written and trains a few iterations when shrunk."""

from pathlib import Path

import pytest
import torch

from genmodels.cli import GenModelsCLI
from tests.cli.common import EXPERIMENTS, TINY, TINY_DCGAN, TINY_GAN, fit, load
from tests.datamodules.formats import write_cifar10, write_mnist

CONFIGS = sorted(p.relative_to(EXPERIMENTS).as_posix() for p in EXPERIMENTS.rglob("*.yaml"))


def _data_args(config: str, tmp_path: Path) -> list[str]:
    if "mnist" in config:
        write_mnist(tmp_path / "data" / "MNIST" / "raw", n_train=64, n_test=16)
    elif "cifar10" in config:
        write_cifar10(tmp_path / "data" / "cifar-10-batches-py", per_batch=16, n_test=16)
    else:
        return []
    return ["--data.init_args.data_dir", str(tmp_path / "data"), "--data.init_args.num_workers", "0"]


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
    tiny = TINY_GAN if config.startswith("gan/") else TINY_DCGAN  # DCGAN, WGAN and WGAN-GP share the networks
    run = tmp_path / "run"
    fit(config, run, *tiny, *_data_args(config, tmp_path), "--data.init_args.batch_size", "8", "--max_iterations", "3")
    checkpoint = load(run / "checkpoints/last.ckpt")
    assert checkpoint["genmodels"]["iteration"] == 3
    assert (run / "config.yaml").is_file() and (run / "samples/iter_00000003.png").is_file()
