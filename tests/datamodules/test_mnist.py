"""MNIST / Fashion-MNIST: our IDX parser on hand-written IDX files, layouts, and error messages."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from datamodules import FashionMNISTDataModule, MNISTDataModule
from datamodules.mnist import IDX_IMAGES_MAGIC, read_idx
from tests.datamodules.formats import idx_bytes, write_idx, write_mnist


@pytest.mark.parametrize("subdir,gz", [("MNIST/raw", False), ("MNIST/raw", True), ("MNIST", True), ("", False)])
def test_reads_idx_files_in_every_accepted_layout(tmp_path, subdir, gz):
    arrays = write_mnist(tmp_path / subdir, gz=gz)
    dm = MNISTDataModule(data_dir=str(tmp_path), image_size=28, batch_size=8)
    dm.setup("fit")
    for split, source in (("train", "train"), ("val", "test")):
        images, labels = arrays[source]
        dataset = dm._dataset(split)
        assert torch.equal(dataset.images, torch.from_numpy(images).unsqueeze(1))
        assert torch.equal(dataset.labels, torch.from_numpy(labels).long())


def test_val_loader_round_trips_images_and_labels(tmp_path):
    images, labels = write_mnist(tmp_path / "MNIST" / "raw")["test"]
    dm = MNISTDataModule(data_dir=str(tmp_path), image_size=28, batch_size=8)
    dm.setup("validate")
    batches = [dm.on_after_batch_transfer(batch, 0) for batch in dm.val_dataloader()]
    assert torch.equal(torch.cat([b["label"] for b in batches]), torch.from_numpy(labels).long())
    pixels = torch.cat([b["image"] for b in batches])
    assert pixels.dtype == torch.float32 and pixels.shape == (20, 1, 28, 28)
    assert torch.equal(pixels, torch.from_numpy(images).unsqueeze(1).float() / 127.5 - 1)
    assert pixels[:, 0, 0, 0].eq(-1.0).all() and pixels[:, 0, 0, 1].eq(1.0).all()


def test_train_batches_are_resized_to_image_size(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=8)  # default image_size 32
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 1, 32, 32) and batch["image"].dtype == torch.uint8
    assert batch["label"].shape == (8,) and batch["label"].dtype == torch.int64
    assert len(dm.train_dataloader()) == 5  # 40 images, drop_last


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=40)
    fashion_arrays = write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=24, n_test=16, gz=True)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), image_size=28, batch_size=8)
    dm.setup("fit")
    assert len(dm._dataset("train")) == 24
    assert torch.equal(dm._dataset("val").labels, torch.from_numpy(fashion_arrays["test"][1]).long())


def test_missing_files_error_names_directories_files_and_fix(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "data"))
    dm.prepare_data()  # download=False: must not fetch anything
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    for expected in (
        str(tmp_path / "data" / "MNIST" / "raw"),
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte.gz",
        "--data.init_args.download true",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ):
        assert expected in message
    assert not (tmp_path / "data").exists()


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated"):
        MNISTDataModule(data_dir=str(tmp_path)).setup("fit")


def test_truncated_gzip_is_a_clear_error(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        MNISTDataModule(data_dir=str(tmp_path)).setup("validate")


def test_wrong_magic_and_mismatched_counts_are_rejected(tmp_path):
    labels_as_images = write_idx(tmp_path / "x", np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="magic number 0x00000801, expected 0x00000803"):
        read_idx(labels_as_images, IDX_IMAGES_MAGIC)

    write_mnist(tmp_path / "MNIST")
    write_idx(tmp_path / "MNIST" / "t10k-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8))
    with pytest.raises(ValueError, match="holds 20 images but .* holds 19 labels"):
        MNISTDataModule(data_dir=str(tmp_path)).setup("test")


def test_trailing_bytes_are_rejected(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8)) + b"\0")
    with pytest.raises(ValueError, match="longer than its header says"):
        read_idx(path, IDX_IMAGES_MAGIC)


def test_gzipped_and_plain_files_parse_identically(tmp_path):
    array = np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4)
    plain = write_idx(tmp_path / "a" / "images", array)
    packed = tmp_path / "b" / "images.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(idx_bytes(array)))
    assert torch.equal(read_idx(plain, IDX_IMAGES_MAGIC), torch.from_numpy(array))
    assert torch.equal(read_idx(packed, IDX_IMAGES_MAGIC), torch.from_numpy(array))


def test_download_goes_through_torchvision_only_when_asked_and_missing(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_mnist(root, download):  # stands in for the network: writes the files torchvision would
        calls.append((root, download))
        write_mnist(tmp_path / "MNIST" / "raw", gz=True)

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    MNISTDataModule(data_dir=str(tmp_path)).prepare_data()
    assert calls == []  # download=False never fetches
    dm = MNISTDataModule(data_dir=str(tmp_path), download=True, batch_size=8)
    dm.prepare_data()
    dm.prepare_data()  # files present now: no second download
    assert calls == [(str(tmp_path), True)]
    dm.setup("fit")
    assert len(dm._dataset("train")) == 40
