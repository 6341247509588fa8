"""Mode coverage: classes found among samples by a domain classifier, and the histogram entropy."""

import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from datamodules import DigitsDataModule
from genmodels import WGANGP
from genmodels.callbacks import ModeCoverage, StopAtIteration
from genmodels.callbacks.mode_coverage import coverage
from genmodels.metrics.classifier import save_classifier, train_classifier


def test_coverage_counts_classes_and_entropy():
    balanced = torch.arange(10).repeat(100)
    assert coverage(balanced, 10)[:2] == (10, pytest.approx(math.log2(10)))
    collapsed = torch.full((1000,), 3)
    assert coverage(collapsed, 10)[:2] == (1, 0.0)
    mostly_two = torch.cat([torch.zeros(995), torch.ones(5)]).long()  # class 1 below 1 %
    assert coverage(mostly_two, 10, min_fraction=0.01)[0] == 1


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    dm = DigitsDataModule(image_size=16, batch_size=64)
    classifier = train_classifier(dm, epochs=8, log=lambda _: None)
    path = tmp_path_factory.mktemp("classifier") / "lenet_digits16.pt"
    save_classifier(classifier, path)
    assert classifier.meta["test_accuracy"] > 0.9
    return path


@pytest.mark.slow
def test_wgan_gp_on_digits_covers_all_ten_classes(digits_classifier, tmp_path):
    """WGAN-GP (n_critic 5, lambda 10) on the embedded digits at 16 px, 1,500 iterations on CPU."""
    torch.manual_seed(0)
    model = WGANGP(image_shape=(1, 16, 16), latent_dim=64, feature_maps=16, ema_decay=0.99)
    probe = ModeCoverage(str(digits_classifier), every_n_iterations=500, num_samples=1000)
    trainer = pl.Trainer(
        accelerator="cpu", logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[probe, StopAtIteration(1500)],
    )
    trainer.fit(model, DigitsDataModule(image_size=16, batch_size=64))
    first, last = probe.history[0], probe.history[-1]
    assert last["iteration"] == 1500
    assert last["train/mode_coverage_classes"] == 10, probe.history
    assert last["train/mode_coverage_entropy"] > 3.0  # close to log2(10) = 3.32: no class dominates
    (metrics,) = tmp_path.rglob("metrics.csv")
    assert "train/mode_coverage_classes" in metrics.read_text().splitlines()[0]
