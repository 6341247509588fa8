"""CIFAR-10: reading the python pickles safely, layout, errors and the random flip."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

from datamodules import CIFAR10DataModule
from datamodules.cifar10 import NumpyOnlyUnpickler
from tests.datamodules.formats import cifar10_batch, write_cifar10

TRAIN_NAMES = [f"data_batch_{i}" for i in range(1, 6)]


def test_reads_train_and_test_batches_as_rgb_planes(tmp_path):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=8)
    dm.setup("fit")
    train, val = dm._dataset("train"), dm._dataset("val")
    data = np.concatenate([batches[name][b"data"] for name in TRAIN_NAMES])
    labels = sum((batches[name][b"labels"] for name in TRAIN_NAMES), [])
    assert train.images.shape == (40, 3, 32, 32) and train.images.dtype == torch.uint8
    # Row-major R, G, B planes: channel c of image 0 is data[0, 1024c : 1024(c+1)].
    for channel in range(3):
        plane = data[0, 1024 * channel : 1024 * (channel + 1)].reshape(32, 32)
        assert torch.equal(train.images[0, channel], torch.from_numpy(plane))
    assert torch.equal(train.labels, torch.tensor(labels))
    assert torch.equal(val.labels, torch.tensor(batches["test_batch"][b"labels"]))
    assert len(val) == 12


def test_batches_are_converted_to_exact_unit_range(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = cifar10_batch(12, seed=9)
    batch[b"data"][:, 0], batch[b"data"][:, 1] = 0, 255
    path.write_bytes(pickle.dumps(batch, protocol=2))
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=12)
    dm.setup("test")
    out = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (12, 3, 32, 32)
    assert out["image"][:, 0, 0, 0].eq(-1.0).all() and out["image"][:, 0, 0, 1].eq(1.0).all()
    assert out["image"].min() >= -1 and out["image"].max() <= 1
    assert torch.equal(out["label"], torch.tensor(batch[b"labels"]))


def test_image_size_resizes_once_in_setup(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    dm = CIFAR10DataModule(data_dir=str(tmp_path), image_size=16, batch_size=4)
    assert dm.image_shape == (3, 16, 16)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.uint8


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_is_rejected_without_running(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "pwned"
    evil = {b"data": _RunsShell(f"touch {marker}"), b"labels": []}
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3: .*refusing to load global (posix|os|nt)\.system"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("fit")
    assert not marker.exists()


def test_unpickler_allows_numpy_arrays_only():
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    loaded = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({b"a": array}, protocol=2)), encoding="bytes").load()
    assert np.array_equal(loaded[b"a"], array)
    with pytest.raises(pickle.UnpicklingError, match=r"global (__builtin__|builtins)\.eval"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(eval, protocol=2))).load()


def test_truncated_and_malformed_batches_name_the_file(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(ValueError, match="test_batch: not a readable CIFAR-10 batch"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("test")

    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: b'data' must be a uint8 array \(N, 3072\)"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("test")


def test_missing_files_error_names_directory_files_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("fit")
    message = str(info.value)
    for expected in (
        f"looked in {tmp_path / 'cifar-10-batches-py'}",
        "data_batch_1",
        "data_batch_5",
        "test_batch",
        "--data.init_args.download true",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ):
        assert expected in message


def test_download_goes_through_torchvision_only_when_missing(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_cifar10(root, download):  # stands in for the network: extracts what the archive holds
        calls.append((root, download))
        write_cifar10(tmp_path / "cifar-10-batches-py")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    dm.prepare_data()
    assert calls == [(str(tmp_path), True)]
    dm.setup("test")
    assert len(dm._dataset("test")) == 12
