"""Behaviour shared by every in-memory image datamodule (datamodules.base)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from datamodules import CIFAR10DataModule, DigitsDataModule, MNISTDataModule
from datamodules.base import InMemoryImageDataset, identity_collate, resize_uint8
from tests.datamodules.conftest import IndexedDataModule, batch_indices, fake_trainer


@pytest.mark.parametrize(
    "key,value",
    [("batch_size", 0), ("batch_size", 2.5), ("num_workers", -1), ("image_size", 4), ("seed", -1)],
)
def test_bad_config_value_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"{key} must be an integer (>= \d+|from \d+ to \d+), got {value!r}"):
        MNISTDataModule(**{key: value})


def test_shapes_are_known_without_reading_files(tmp_path):
    missing = tmp_path / "nowhere"
    mnist = MNISTDataModule(data_dir=str(missing), image_size=16)
    cifar = CIFAR10DataModule(data_dir=str(missing))
    assert (mnist.image_shape, mnist.num_classes, mnist.channels) == ((1, 16, 16), 10, 1)
    assert (cifar.image_shape, cifar.num_classes, cifar.channels) == ((3, 32, 32), 10, 3)
    assert DigitsDataModule().image_shape == (1, 32, 32)
    assert not missing.exists()


def test_data_dir_defaults_to_env_then_data(monkeypatch, tmp_path):
    assert MNISTDataModule().data_dir == Path("data")
    monkeypatch.setenv("GENMODELS_DATA", str(tmp_path))
    assert MNISTDataModule().data_dir == tmp_path
    assert MNISTDataModule(data_dir="elsewhere").data_dir == Path("elsewhere")


def test_hyperparameters_include_subclass_arguments():
    hparams = CIFAR10DataModule(batch_size=8, random_flip=True).hparams
    assert hparams["batch_size"] == 8 and hparams["random_flip"] is True and hparams["data_dir"] is None


def test_getitems_builds_the_batch_getitem_would():
    images = torch.arange(5 * 3 * 2 * 2, dtype=torch.uint8).view(5, 3, 2, 2)
    dataset = InMemoryImageDataset(images, torch.arange(5))
    batch = dataset.__getitems__([4, 0, 2])
    items = [dataset[i] for i in (4, 0, 2)]
    assert torch.equal(batch["image"], torch.stack([item["image"] for item in items]))
    assert torch.equal(batch["label"], torch.tensor([4, 0, 2]))
    assert len(dataset) == 5
    assert pickle.loads(pickle.dumps(identity_collate)) is identity_collate  # workers can receive it


def test_train_batches_are_uint8_dicts_converted_to_exact_unit_range():
    dm = IndexedDataModule(num_train=256, batch_size=256)  # pixel values 0..255, one batch
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (256, 1, 8, 8)
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (256,)
    assert batch["image"].device.type == "cpu"

    out = dm.on_after_batch_transfer({**batch, "extra": "kept"}, 0)
    image = out["image"]
    assert image.dtype == torch.float32
    order = batch["image"][:, 0, 0, 0].long()
    assert image[order == 0].eq(-1.0).all() and image[order == 255].eq(1.0).all()
    assert torch.equal(image, batch["image"].float() / 127.5 - 1)
    assert out["extra"] == "kept" and torch.equal(out["label"], batch["label"])
    assert dm.on_after_batch_transfer(out, 0)["image"] is image  # float input is not rescaled again


def test_train_loader_drops_last_and_eval_loaders_are_sequential_and_complete():
    dm = IndexedDataModule(num_train=42, batch_size=5)
    train = dm.train_dataloader()
    assert len(train) == 8 and all(len(b["label"]) == 5 for b in train)
    val = list(dm.val_dataloader())  # 12 samples
    assert [len(b["label"]) for b in val] == [5, 5, 2]
    assert [i for b in val for i in batch_indices(b)] == list(range(12))
    assert [i for b in dm.test_dataloader() for i in batch_indices(b)] == list(range(12))
    assert not train.persistent_workers
    assert IndexedDataModule(num_workers=2).train_dataloader().persistent_workers


def test_batch_size_larger_than_the_training_set_is_a_config_error():
    dm = IndexedDataModule(num_train=10, batch_size=16)
    with pytest.raises(ValueError, match="batch_size=16 is larger than the 10 training images"):
        dm.train_dataloader()


def test_setup_reads_each_split_once(monkeypatch):
    dm = IndexedDataModule()
    calls = []
    original = dm.read_split
    monkeypatch.setattr(dm, "read_split", lambda split: calls.append(split) or original(split))
    dm.setup("fit")
    dm.setup("fit")
    dm.setup("test")
    assert calls == ["train", "val", "test"]


def test_counter_only_counts_training_batches():
    dm = IndexedDataModule()
    batch = {"image": torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "label": torch.zeros(1, dtype=torch.long)}
    dm.trainer = fake_trainer(training=True)
    dm.on_before_batch_transfer(batch, 0)
    dm.trainer = fake_trainer(training=False)
    dm.on_before_batch_transfer(batch, 0)
    assert dm.state_dict() == {"epoch": 0, "batches_consumed": 1}


def test_resize_is_bilinear_antialiased_and_rounded():
    images = torch.randint(0, 256, (3, 2, 12, 12), dtype=torch.uint8)
    resized = resize_uint8(images, 8)
    expected = torch.nn.functional.interpolate(images.float(), size=(8, 8), mode="bilinear", antialias=True)
    assert resized.dtype == torch.uint8 and resized.shape == (3, 2, 8, 8)
    assert torch.equal(resized, expected.round().clamp(0, 255).to(torch.uint8))
    constant = torch.full((1, 1, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(resize_uint8(constant, 32), torch.full((1, 1, 32, 32), 77, dtype=torch.uint8))
    assert resize_uint8(images, 12) is images  # already the right size: no copy


def _training_devices() -> list[torch.device]:
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda", 0))
    return devices


@pytest.mark.parametrize("device", _training_devices(), ids=str)
def test_on_device_gathers_the_same_batches_on_the_training_device(device):
    host, resident = IndexedDataModule(num_train=40, batch_size=4), IndexedDataModule(num_train=40, batch_size=4)
    resident.on_device = True
    resident.trainer = SimpleNamespace(**vars(fake_trainer()), strategy=SimpleNamespace(root_device=device))
    loader = resident.train_dataloader()
    assert loader.dataset.images.device == device and loader.dataset.labels.device == device
    host_batches, resident_batches = list(host.train_dataloader()), list(loader)
    assert len(resident_batches) == len(host_batches) == 10
    for ours, theirs in zip(resident_batches, host_batches):
        assert ours["image"].device == device and ours["image"].dtype == torch.uint8
        assert torch.equal(ours["image"].cpu(), theirs["image"]) and torch.equal(ours["label"].cpu(), theirs["label"])
    # The copy is made once, not per epoch.
    assert resident.train_dataloader().dataset is loader.dataset


def test_on_device_refuses_workers_and_pinned_memory():
    with pytest.raises(ValueError, match="num_workers 0"):
        DigitsDataModule(on_device=True, num_workers=2)
    with pytest.raises(ValueError, match="pin_memory false"):
        DigitsDataModule(on_device=True, pin_memory=True)
    assert DigitsDataModule(on_device=True).hparams["on_device"] is True


def test_split_images_are_the_eval_loaders_images_in_order_and_satisfy_the_protocol():
    from genmodels.protocols import ImageSplits

    datamodule = DigitsDataModule(image_size=16, batch_size=32, random_flip=True)
    assert isinstance(datamodule, ImageSplits)
    datamodule.setup("validate")
    batches = list(datamodule.val_dataloader())
    images, labels = datamodule.split_images("val")
    assert images.dtype == torch.uint8 and images.shape[1:] == (1, 16, 16)
    assert torch.equal(images, torch.cat([b["image"] for b in batches]))
    assert torch.equal(labels, torch.cat([b["label"] for b in batches]))
    first, first_labels = datamodule.split_images("val", limit=5)
    assert torch.equal(first, images[:5]) and torch.equal(first_labels, labels[:5])
    with pytest.raises(ValueError, match="split must be one of"):
        datamodule.split_images("holdout")


def test_split_images_of_a_folder_are_decoded_in_order(tmp_path):
    from datamodules import ImageFolderDataModule
    from tests.datamodules.formats import write_image_folder

    write_image_folder(tmp_path, {"cats": 3, "dogs": 2})
    datamodule = ImageFolderDataModule(str(tmp_path), image_size=8, batch_size=1, val_fraction=0.0)
    images, labels = datamodule.split_images("train")
    dataset = datamodule.split_dataset("train")
    assert images.shape == (5, 3, 8, 8) and torch.equal(images, dataset.__getitems__(range(5))["image"])
    assert torch.equal(labels, dataset.labels)
