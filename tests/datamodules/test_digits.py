"""scikit-learn digits: the whole set, the fixed hold-out, pixel mapping and batches."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from datamodules import DigitsDataModule
from datamodules.digits import holdout_indices, load_digits_uint8


def test_loads_all_1797_digits_as_rounded_uint8():
    images, labels = load_digits_uint8()
    digits = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.uint8
    expected = torch.tensor([[round(v * 255 / 16) for v in row] for row in digits.data[:50]], dtype=torch.uint8)
    assert torch.equal(images[:50].flatten(1), expected)
    assert int(images.min()) == 0 and int(images.max()) == 255
    assert torch.equal(labels, torch.from_numpy(digits.target).long())


def test_split_sizes_and_holdout_is_val_and_test():
    dm = DigitsDataModule(image_size=8)
    dm.setup()
    train, val, test = (dm._dataset(split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (1617, 180, 180)
    assert torch.equal(val.images, test.images) and torch.equal(val.labels, test.labels)
    train_index, holdout_index = holdout_indices(1797, 0.1)
    assert sorted(train_index.tolist() + holdout_index.tolist()) == list(range(1797))
    images, labels = load_digits_uint8()
    assert torch.equal(train.images, images[train_index]) and torch.equal(val.labels, labels[holdout_index])


def test_holdout_does_not_depend_on_the_shuffling_seed():
    a, b = DigitsDataModule(seed=0, image_size=8), DigitsDataModule(seed=5, image_size=8)
    assert torch.equal(a._dataset("val").images, b._dataset("val").images)
    assert torch.equal(a._dataset("val").labels, b._dataset("val").labels)


def test_batches_are_upsampled_to_image_size():
    dm = DigitsDataModule(batch_size=16, val_fraction=0.5)
    assert dm.image_shape == (1, 32, 32) and dm.num_classes == 10
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (16, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert len(dm._dataset("val")) == 898  # round(1797 * 0.5) = 898 (half to even)


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, "0.1"])
def test_bad_val_fraction_names_the_key(value):
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\)"):
        DigitsDataModule(val_fraction=value)
