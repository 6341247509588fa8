"""CIFAR-10 from the "python version" pickles, read with an unpickler that cannot run code.

Dataset: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", technical report,
University of Toronto, 2009. https://www.cs.toronto.edu/~kriz/cifar.html

Files: ``<data_dir>/cifar-10-batches-py/{data_batch_1..data_batch_5, test_batch}`` (the folder
``cifar-10-python.tar.gz`` extracts to; the files directly in ``<data_dir>``, or in any folder up
to two levels below it, e.g. ``<data_dir>/cifar10/cifar-10-batches-py/``, are accepted too).
``batches.meta``, when present, gives the class names.
Each is a pickled dict with ``b"data"``, a uint8 array (N, 3072) holding the R, G and B planes of
each 32x32 image in row-major order, and ``b"labels"``, a list of N ints in 0..9.
train = the five data batches (50k images); val = test = ``test_batch`` (10k images).

Pickle executes whatever a file asks for, so these files are loaded with `NumpyOnlyUnpickler`,
which only resolves the few numpy globals needed to rebuild arrays: a file that tries to call
anything else (``os.system``...) is rejected with a ValueError before anything runs. The reader
checks shapes and dtypes, not checksums of the originals, so small files in the same format work.
A batch file that fails to load is refused with a `DataError` naming it.

Optional augmentation: ``random_flip`` (see `datamodules.base`), as in the CIFAR-10 setups of
StyleGAN2-ADA and StudioGAN.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from datamodules.base import (
    DATA_ENV_VAR, DataError, DataNotFoundError, ImageDataModule, candidate_dirs, fetch_or_explain, searched_dirs,
)
from genmodels.compat import numpy_pickle_globals

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
_SPLIT_BATCHES = {"train": TRAIN_BATCHES, "val": TEST_BATCHES, "test": TEST_BATCHES}
_SIDE = 32


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds builtin containers and numpy arrays.

    ``find_class`` is the only way a pickle can reach a callable; refusing everything but the
    numpy reconstruction functions means a crafted file cannot execute code.
    """

    _allowed: Optional[dict[tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str) -> Any:
        if NumpyOnlyUnpickler._allowed is None:
            NumpyOnlyUnpickler._allowed = numpy_pickle_globals()
        try:
            return NumpyOnlyUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays are allowed in CIFAR-10 batches"
            ) from None


def _unpickle(path: Path) -> Any:
    """Loads one pickle safely; any failure becomes a ValueError naming the file."""
    try:
        with path.open("rb") as handle:
            return NumpyOnlyUnpickler(handle, encoding="bytes").load()
    except Exception as err:  # a damaged pickle can fail with almost any exception type
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {err})") from err


def _field(batch: dict, key: str) -> Any:
    # Original files were written by Python 2 and have bytes keys; accept str keys too.
    return batch.get(key.encode(), batch.get(key))


def read_cifar_batch(path: Path, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Reads one CIFAR batch file as uint8 images (N, 3, 32, 32) and int64 labels (N,).

    Raises:
        ValueError: the file is corrupt, truncated, unsafe, or not laid out like a CIFAR-10 batch.
    """
    batch = _unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * _SIDE**2:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' must be a uint8 array (N, {3 * _SIDE**2}), found {found}")
    labels = np.asarray(labels if labels is not None else [])
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(data),):
        raise DataError(f"{path}: b'labels' must hold {len(data)} integers, found {labels.dtype} {labels.shape}")
    if len(labels) and not (0 <= labels.min() and labels.max() < num_classes):
        raise DataError(f"{path}: labels must be in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    images = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, 3, _SIDE, _SIDE)
    return images, torch.from_numpy(labels.astype(np.int64))


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 from the python pickles; 3 channels, 10 classes, 32 px native.

    Args:
        data_dir: data root holding ``cifar-10-batches-py/``; ``None`` means ``$GENMODELS_DATA``,
            else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes.
        image_size: side of the square images (native 32; other sizes are resized once).
        download: fetch and extract the archive through torchvision in `prepare_data` if missing.
        seed: seed of the training order.
        pin_memory: pin batches for faster host-to-GPU copies.
        on_device: keep the training split on the training device (see `ImageDataModule`).
        random_flip: mirror training images left-right with probability 0.5, reproducibly per
            (seed, epoch, image) (see `ImageDataModule`).
        max_train_images: train on this many images only, class-stratified (see `ImageDataModule`).
    """

    dataset_name = "CIFAR-10"
    _channels = 3
    _num_classes = 10

    @property
    def search_dirs(self) -> list[Path]:
        """The preferred directories for the batch files, in order (subfolders are searched after them)."""
        return [self.data_dir / FOLDER, self.data_dir]

    @property
    def class_names(self) -> list[str]:
        """The ten names from ``batches.meta`` when the files have been found and it is there, else []."""
        meta = self.root_found / "batches.meta" if self.root_found is not None else None
        if meta is None or not meta.is_file():
            return []
        try:
            names = _field(_unpickle(meta), "label_names")
        except (DataError, AttributeError):
            return []
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names or []]

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read_cifar_batch(path, self.num_classes) for path in self._find_files(_SPLIT_BATCHES[split])]
        return torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])

    def download_files(self) -> None:
        if self._locate(TRAIN_BATCHES + TEST_BATCHES) is not None:
            return
        from torchvision import datasets  # only needed to download

        fetch_or_explain("CIFAR-10", self._how_to_get(), lambda: datasets.CIFAR10(root=str(self.data_dir), download=True))

    def _candidates(self):
        return candidate_dirs(self.data_dir, self.search_dirs, depth=2, accept=lambda rel: "cifar-100" not in str(rel).lower())

    def _locate(self, names: tuple[str, ...]) -> Optional[list[Path]]:
        """Paths of ``names`` in the first candidate directory holding all of them."""
        for directory in self._candidates():
            if all((directory / name).is_file() for name in names):
                self.root_found = directory
                self.layout_found = "python version (cifar-10-batches-py/)" if directory.name == FOLDER else "python-version batch files in a folder"
                return [directory / name for name in names]
        return None

    def _find_files(self, names: tuple[str, ...]) -> list[Path]:
        paths = self._locate(names)
        if paths is None:
            raise DataNotFoundError(
                "CIFAR-10", f"the batch files {FOLDER}/{{{', '.join(TRAIN_BATCHES + TEST_BATCHES)}}}", searched_dirs(self.search_dirs, self._candidates()), self._how_to_get()
            )
        return paths

    def _how_to_get(self) -> str:
        return (
            f"To get them, rerun with --data.init_args.download true (fetches through torchvision into "
            f"{self.data_dir}), or download {URL} and run `tar -xzf cifar-10-python.tar.gz -C {self.data_dir}`, "
            f"which creates {FOLDER}/. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )
