"""WGAN-GP (Gulrajani et al. 2017) as configured in experiments/wgan_gp/digits.yaml covers every digit class."""

import math

import pytest
import pytorch_lightning as pl
import torch
import yaml

from datamodules import DigitsDataModule
from genmodels import WGANGP
from genmodels.callbacks import ModeCoverage, StopAtIteration
from genmodels.metrics.classifier import save_classifier, train_classifier
from tests.cli.common import EXPERIMENTS

ITERATIONS = 1000  # = 200 generator updates at n_critic 5; about 70 s on a 2-core CPU


@pytest.mark.slow
def test_wgan_gp_on_digits_covers_all_ten_classes(tmp_path):
    config = yaml.safe_load((EXPERIMENTS / "wgan_gp/digits.yaml").read_text())
    model_args, data_args = config["model"]["init_args"], config["data"]["init_args"]
    pl.seed_everything(config["seed_everything"])
    data = DigitsDataModule(**data_args)
    judge = train_classifier(DigitsDataModule(image_size=data_args["image_size"], batch_size=64), epochs=5, log=lambda _: None)
    save_classifier(judge, tmp_path / "lenet.pt")

    model = WGANGP(image_shape=data.image_shape, **model_args)
    probe = ModeCoverage(str(tmp_path / "lenet.pt"), every_n_iterations=ITERATIONS, num_samples=1000)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[probe, StopAtIteration(ITERATIONS)],
    )
    trainer.fit(model, data)

    (result,) = probe.history
    assert result["iteration"] == ITERATIONS
    # Every class gets at least 1 % of the (EMA generator's) samples, and the histogram is close
    # to uniform: log2(10) = 3.32 bits would be perfectly balanced.
    assert result["train/mode_coverage_classes"] == 10
    assert 3.0 < result["train/mode_coverage_entropy"] <= math.log2(10)
