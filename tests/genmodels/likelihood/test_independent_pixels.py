"""The independent-pixel baseline: exact likelihood, maximum likelihood is the histogram."""

import math

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from genmodels import IndependentPixels
from genmodels.callbacks import StopAtIteration


def _data(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Pixels where position 0 is always 0, position 1 is 0 or 255 at random and the rest vary."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 1, 2, 2), generator=g)
    pixels[:, 0, 0, 0] = 0
    pixels[:, 0, 0, 1] = 255 * torch.randint(0, 2, (n,), generator=g)
    return pixels


def test_bits_per_dim_is_the_summed_categorical_nll():
    model = IndependentPixels(image_shape=(1, 2, 2))
    with torch.no_grad():
        model.logits[:, 0] = torch.log(torch.full((256,), 1e-9)).index_fill(0, torch.tensor([0]), 0.0)
    images = _data(4) / 127.5 - 1
    # Position 0 is certain (0 bits); the other three stay uniform (8 bits each).
    assert model.bits_per_dim({"image": images}).tolist() == pytest.approx([6.0] * 4, abs=1e-6)


def test_training_converges_to_the_empirical_histogram():
    pixels = _data(64)
    data = [{"image": pixels[k : k + 16] / 127.5 - 1} for k in range(0, 64, 16)]
    model = IndependentPixels(image_shape=(1, 2, 2), lr=0.1)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, callbacks=[StopAtIteration(300)])
    trainer.fit(model, DataLoader(data, batch_size=None))
    assert model.iteration == 300
    probs = torch.softmax(model.logits.detach(), dim=0)
    assert probs[0, 0] > 0.97  # the constant position
    assert probs[0, 1] + probs[255, 1] > 0.97  # the two-valued one
    bpd = model.bits_per_dim({"image": pixels / 127.5 - 1}).mean().item()
    # The empirical entropy of the histogram (in bits per position, averaged) is the floor.
    entropy = sum(_entropy_bits(pixels[:, 0].flatten(1)[:, d]) for d in range(4)) / 4
    assert entropy <= bpd < entropy + 0.25


def _entropy_bits(values: torch.Tensor) -> float:
    p = torch.bincount(values, minlength=256).double() / len(values)
    p = p[p > 0]
    return float(-(p * torch.log2(p)).sum())


def test_samples_follow_each_position_and_temperature_zero_takes_the_mode():
    model = IndependentPixels(image_shape=(1, 1, 2))
    with torch.no_grad():
        model.logits.fill_(-math.inf)
        model.logits[[10, 20], 0] = 0.0  # position 0: 10 or 20 with equal odds
        model.logits[[30, 40], 1] = torch.tensor([0.0, math.log(3.0)])  # position 1: 40 is 3x likelier
    samples = model.sample(4000, generator=torch.Generator().manual_seed(0))
    pixels = ((samples + 1) * 127.5).round().long().view(4000, 2)
    assert set(pixels[:, 0].tolist()) == {10, 20} and set(pixels[:, 1].tolist()) == {30, 40}
    assert (pixels[:, 1] == 40).float().mean().item() == pytest.approx(0.75, abs=0.03)
    mode = model.sample(3, generator=torch.Generator().manual_seed(0), temperature=0.0)
    assert ((mode + 1) * 127.5).round().view(3, 2)[:, 1].tolist() == [40.0, 40.0, 40.0]
