"""MNIST and Fashion-MNIST, read from their IDX files by a parser of our own.

Datasets:
    MNIST: Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to
    document recognition", Proc. IEEE 86(11), 1998. http://yann.lecun.com/exdb/mnist/
    Fashion-MNIST: H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
    Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.

Both are 28x28 grayscale, 10 classes, 60k train and 10k test images in four IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally gzipped). They are looked up in torchvision's layout
``<data_dir>/MNIST/raw/`` (``FashionMNIST/raw/``), then ``<data_dir>/MNIST/``, then ``<data_dir>/``,
then in subfolders (two levels down) whose path names the dataset (``mnist/``,
``fashion-mnist/data/fashion/``; for MNIST, not a path naming "fashion", whose files have the
same names). Also accepted: the Kaggle copy's names (``train-images.idx3-ubyte``, a dot instead of
a hyphen) and its duplicate folders (``train-images-idx3-ubyte/train-images-idx3-ubyte``).
train = the train files; val = test = the t10k files (the datasets have no separate val split).
A truncated or damaged file is refused with a `DataError` naming it (one bad IDX file holds a
whole split, so there is nothing to skip).
Images are resized from 28 to ``image_size`` (32 by default, a power of two for conv nets).

The reader checks the IDX header and sizes, not checksums of the original files, so small
hand-made files in the same format work (tests use them). ``download=True`` fetches through
torchvision, which does check the originals.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Optional

import torch

from datamodules.base import (
    DATA_ENV_VAR, DataError, DataNotFoundError, ImageDataModule, candidate_dirs, fetch_or_explain, searched_dirs,
)

#: IDX magic numbers: 0x08 = unsigned byte data, last byte = number of dimensions.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_SPLIT_FILES = {"train": _TRAIN_FILES, "val": _TEST_FILES, "test": _TEST_FILES}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in .gz; a damaged archive is a ValueError."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip file ({err}); re-download it") from err


def read_idx(path: Path, expected_magic: int) -> torch.Tensor:
    """Parses an unsigned-byte IDX file into a uint8 tensor shaped by its header.

    Header: a big-endian magic number (0x0000_08_<ndim>) and ``ndim`` big-endian uint32 sizes,
    followed by the data in row-major order.

    Raises:
        ValueError: wrong magic number, or a file shorter or longer than its header says.
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, not even a header)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"{path}: not the expected IDX file (magic number 0x{magic:08x}, expected 0x{expected_magic:08x})"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} of {header_size} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = header_size + math.prod(dims)
    if len(raw) != expected_size:
        problem = "truncated" if len(raw) < expected_size else "longer than its header says"
        raise DataError(
            f"{path}: {problem}: header declares shape {dims}, i.e. {expected_size} bytes, but the file has {len(raw)}"
        )
    if math.prod(dims) == 0:
        return torch.zeros(dims, dtype=torch.uint8)
    # bytearray: torch.frombuffer wants a writable buffer, and this copy is the tensor's storage.
    return torch.frombuffer(bytearray(raw[header_size:]), dtype=torch.uint8).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Reads an images/labels IDX pair as uint8 (N, 1, rows, cols) and int64 (N,), checking they match."""
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC).to(torch.int64)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if len(labels) and int(labels.max()) >= num_classes:
        raise DataError(f"{labels_path}: label {int(labels.max())} is outside 0..{num_classes - 1}")
    return images.unsqueeze(1), labels


class MNISTDataModule(ImageDataModule):
    """MNIST handwritten digits from IDX files; 1 channel, 10 classes, resized from 28 px.

    Args:
        data_dir: data root holding ``MNIST/raw/`` (torchvision's layout), ``MNIST/`` or the files
            themselves; ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes.
        image_size: side of the square images (the native size is 28).
        download: fetch the files through torchvision in `prepare_data` if they are missing.
        seed: seed of the training order.
        pin_memory: pin batches for faster host-to-GPU copies.
        on_device: keep the training split on the training device (see `ImageDataModule`).
        max_train_images: train on this many images only, class-stratified (see `ImageDataModule`).
        random_flip: mirror training images left-right at random (see `ImageDataModule`).
    """

    dataset_name = "MNIST"
    _channels = 1
    _num_classes = 10
    #: Folder under data_dir, also the torchvision.datasets class used to download.
    folder = "MNIST"
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"

    @property
    def search_dirs(self) -> list[Path]:
        """The preferred directories for the IDX files, in order (subfolders are searched after them)."""
        return [self.data_dir / self.folder / "raw", self.data_dir / self.folder, self.data_dir]

    def _names_this_dataset(self, relative: Path) -> bool:
        path = str(relative).lower()
        if self.folder == "FashionMNIST":
            return "fashion" in path
        return "mnist" in path and "fashion" not in path

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images_path, labels_path = self._find_files(_SPLIT_FILES[split])
        return read_idx_pair(images_path, labels_path, self.num_classes)

    def download_files(self) -> None:
        if all(self._locate(names) for names in (_TRAIN_FILES, _TEST_FILES)):
            return  # already there, possibly in a layout torchvision would not recognise
        from torchvision import datasets  # only needed to download

        # getattr: torchvision names its dataset classes as our `folder` (MNIST, FashionMNIST): a lookup by name.
        dataset = getattr(datasets, self.folder)
        fetch_or_explain(self.dataset_name, self._how_to_get(), lambda: dataset(root=str(self.data_dir), download=True))

    def _candidates(self):
        return candidate_dirs(self.data_dir, self.search_dirs, depth=3, accept=self._names_this_dataset)

    def _locate(self, names: tuple[str, ...]) -> Optional[list[Path]]:
        """Paths of ``names`` (plain or .gz, any accepted spelling) in the first directory holding all of them."""
        for directory in self._candidates():
            paths = [self._existing(directory, name) for name in names]
            if all(path is not None for path in paths):
                self.root_found = directory
                kaggle = any("." in p.name.removesuffix(".gz") or p.parent.name == p.name for p in paths)  # type: ignore[union-attr]
                where = "torchvision (<root>/%s/raw/)" % self.folder if directory == self.search_dirs[0] else "IDX files in a folder"
                self.layout_found = where + (", Kaggle file names" if kaggle else "") + (", gzipped" if paths[0].suffix == ".gz" else "")  # type: ignore[union-attr]
                return paths  # type: ignore[return-value]
        return None

    @staticmethod
    def _existing(directory: Path, name: str) -> Optional[Path]:
        # Prefer the extracted file: torchvision keeps both and reading it skips decompression.
        # Kaggle's copy spells "train-images.idx3-ubyte" and repeats each file in a folder of its name.
        dotted = name.replace("-idx", ".idx")
        for stem in (name, dotted):
            for candidate in (directory / stem, directory / f"{stem}.gz", directory / stem / stem):
                if candidate.is_file():
                    return candidate
        return None

    def _find_files(self, names: tuple[str, ...]) -> list[Path]:
        paths = self._locate(names)
        if paths is None:
            raise DataNotFoundError(
                self.dataset_name, f"the IDX files {' and '.join(names)} (optionally .gz)",
                searched_dirs(self.search_dirs, self._candidates()), self._how_to_get(),
            )
        return paths

    def _how_to_get(self) -> str:
        all_files = ", ".join(f"{name}.gz" for name in _TRAIN_FILES + _TEST_FILES)
        target = self.data_dir / self.folder / "raw"
        return (
            f"To get them, rerun with --data.init_args.download true (fetches through torchvision into {target}), "
            f"or download {all_files} from {self.url} into {target}/. "
            f"The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Zalando clothing) from IDX files; 1 channel, 10 classes, resized from 28 px.

    Same files, layout and arguments as `MNISTDataModule`, under ``<data_dir>/FashionMNIST/``.
    """

    dataset_name = "FashionMNIST"
    folder = "FashionMNIST"
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
