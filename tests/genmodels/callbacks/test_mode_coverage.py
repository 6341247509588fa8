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
    classifier = train_classifier(dm, epochs=3, log=lambda _: None)
    path = tmp_path_factory.mktemp("classifier") / "lenet_digits16.pt"
    save_classifier(classifier, path)
    return path


def test_callback_logs_coverage_of_the_samples(digits_classifier, tmp_path):
    torch.manual_seed(0)
    model = WGANGP(image_shape=(1, 16, 16), latent_dim=16, feature_maps=4, ema_decay=0.9)
    probe = ModeCoverage(str(digits_classifier), every_n_iterations=5, num_samples=300)
    trainer = pl.Trainer(
        accelerator="cpu", logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[probe, StopAtIteration(10)],
    )
    trainer.fit(model, DigitsDataModule(image_size=16, batch_size=64))
    assert [h["iteration"] for h in probe.history] == [5, 10]
    # The logged numbers are those of the EMA generator's samples, as `sample` returns them.
    model.eval()
    samples = model.sample(300, generator=torch.Generator().manual_seed(0))
    classes, entropy, _ = coverage(probe.classifier.predict(samples), 10)
    assert probe.history[-1]["train/mode_coverage_classes"] == classes
    assert probe.history[-1]["train/mode_coverage_entropy"] == pytest.approx(entropy)
    (metrics,) = tmp_path.rglob("metrics.csv")
    assert "train/mode_coverage_classes" in metrics.read_text().splitlines()[0]
