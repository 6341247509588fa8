"""Writers of tiny datasets in the real on-disk formats, for tests (no network, seconds at most).

MNIST: the four IDX files (optionally gzipped). CIFAR-10: ``data_batch_1..5`` and ``test_batch``
as protocol-2 pickles of dicts with bytes keys and uint8 (N, 3072) data, as in the real archive.
Used by the datamodule tests and by the CLI tests that run the experiment YAMLs on fake data.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialises a uint8 array as IDX: magic 0x0000_08_<ndim>, big-endian uint32 sizes, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Writes ``array`` as an IDX file at ``path`` (``path.gz`` when ``gz``); returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def mnist_arrays(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 28x28 uint8 images whose pixels (0,0) and (0,1) are 0 and 255, and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 0
    images[:, 0, 1] = 255
    labels = (np.arange(num) * 7 + seed) % 10
    return images, labels.astype(np.uint8)


def write_mnist(directory: Path, n_train: int = 40, n_test: int = 20, gz: bool = False) -> dict:
    """Writes the four MNIST IDX files into ``directory``; returns ``{"train"|"test": (images, labels)}``."""
    arrays = {"train": mnist_arrays(n_train, seed=1), "test": mnist_arrays(n_test, seed=2)}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = arrays[split]
        write_idx(Path(directory) / images_name, images, gz=gz)
        write_idx(Path(directory) / labels_name, labels, gz=gz)
    return arrays


def cifar10_batch(num: int, seed: int) -> dict:
    """A batch dict as in the real files: bytes keys, uint8 (N, 3072) data, a list of int labels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(num, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=num)]
    return {b"batch_label": b"fixture", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * num}


def write_cifar10(folder: Path, per_batch: int = 8, n_test: int = 12) -> dict:
    """Writes data_batch_1..5 and test_batch into ``folder`` (a ``cifar-10-batches-py``); returns the dicts."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for seed, name in enumerate(CIFAR10_BATCHES):
        batches[name] = cifar10_batch(n_test if name == "test_batch" else per_batch, seed)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    return batches


# -- fixtures for tests/cli/test_experiments.py: write the files, return the CLI args --------------


def experiment_fixture_mnist(root: Path) -> list[str]:
    write_mnist(root / "MNIST" / "raw", n_train=64, n_test=16)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_cifar10(root: Path) -> list[str]:
    write_cifar10(root / "cifar-10-batches-py", per_batch=16, n_test=16)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]
