"""Any folder of images, decoded lazily from disk: `ImageFolderDataModule`, and the pieces CelebA reuses.

Unlike the in-memory datasets, a folder can hold more images than fit in memory (CelebA's 200k at
256 px would be 40 GB as uint8), so images are read one by one when a batch asks for them:
`LazyImageDataset.__getitems__` opens each file with PIL, crops the centred square, resizes it to
``image_size`` and stacks the batch as uint8, exactly the batch dict the in-memory datasets give
(``{"image": uint8 (B,C,H,W), "label": int64 (B,)}``, plus ``attributes`` where there are some). So
the base class's loaders, its uint8 -> [-1, 1] conversion on the device and its resumable sampler
(exact mid-epoch resume) apply unchanged; only the dataset of a split differs (`_dataset`).
Use ``num_workers`` > 0: decoding is the bottleneck.

Bad files are found at setup, not an hour into training: `image_file_problem` reads the first
and last bytes of every file of a split and checks the format's signature (JPEG, PNG, WebP) and
its end (JPEG's end-of-image marker, PNG's IEND chunk, WebP's RIFF length), which catches the usual
damage (a non-image with an image extension, a file cut short by an interrupted copy or download)
for two small reads per file; a file failing that test is decoded with PIL to confirm. ``bad_files`` says what happens to one: ``error`` (a
`DataError` naming it) or ``skip`` (one warning naming it). ``genmodels check-data --decode``
decodes every file.

Geometry: the centred square of side ``crop_size`` (default: the shorter side, i.e. the same as
"resize the shorter side, then centre-crop") is resized to ``image_size`` x ``image_size`` with
PIL's antialiased bilinear filter (the crop is cut first, so no pixel outside it leaks in).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from datamodules.base import (
    SPLITS, DataError, DataNotFoundError, ImageDataModule, check_int, ignored_entry,
)
from datamodules.digits import holdout_indices
from genmodels.errors import InvalidValue, MissingFile
from genmodels.images import IMAGE_EXTENSIONS, find_images

__all__ = [
    "ImageFolderDataModule", "LazyImageDataModule", "LazyImageDataset", "find_images", "load_image", "IMAGE_EXTENSIONS",
    "image_file_problem",
]

BadFiles = Literal["error", "skip"]

# The last bytes of an intact file: JPEG's end-of-image marker, PNG's IEND chunk (with its CRC).
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"


def find_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, any case of the extensions), sorted; hidden entries
    (``.DS_Store``, ``._x.jpg``) and ``__MACOSX`` folders skipped."""
    found = []
    seen: set[str] = set()
    # os.walk with followlinks: a class folder that is a symlink (data kept elsewhere) is read, not
    # dropped as Path.rglob drops it; each real folder is walked once, so a link loop ends.
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [d for d in subfolders if not ignored_entry(d)]
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and not ignored_entry(name) and path.is_file():
                found.append(path)
    return sorted(found)


def _looks_intact(path: Path) -> bool:
    """True when the file starts with a JPEG, PNG or WebP signature and ends as that format ends:
    two small reads, no decoding (the check every file gets at setup)."""
    with open(path, "rb") as file:
        head = file.read(12)
        size = file.seek(0, 2)
        file.seek(max(0, size - 32))
        tail = file.read()
    if head.startswith(b"\xff\xd8\xff"):
        return tail.rstrip(b"\x00\r\n ").endswith(_JPEG_END)  # some writers pad after the marker
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return tail.endswith(_PNG_END)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= size  # RIFF declares the length
    return False


def image_file_problem(path: str | Path, full_decode: bool = False) -> Optional[str]:
    """Why ``path`` is not a usable image, or None.

    Checks the signature and the last bytes (see the module docstring); a file that fails, or
    every file with ``full_decode``, is decoded with PIL, and a decoding error is the problem.
    """
    try:
        size = _header_size(path)  # a decompression bomb is refused here, at setup, not mid-run
        if size[0] * size[1] > MAX_IMAGE_PIXELS:
            return (f"{size[0]}x{size[1]} pixels, over the {MAX_IMAGE_PIXELS:,}-pixel limit (a decompression bomb, or "
                    "a photo far larger than training needs: shrink it)")
        if not full_decode and _looks_intact(Path(path)):
            return None
        with Image.open(path) as image:
            image.load()
        return None
    except FileNotFoundError:
        return "file missing"
    except Image.DecompressionBombError as err:
        return f"over the pixel limit (a decompression bomb?): {err}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        return f"not a readable image, truncated or corrupt ({type(err).__name__}: {err})"


#: Largest image (width x height) a dataset may hold: PIL's own decompression-bomb bound.
MAX_IMAGE_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def _header_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only (PIL decodes nothing until ``load``)."""
    with Image.open(path) as image:
        return image.size


def load_image(path: str | Path, image_size: int, channels: int = 3, crop_size: Optional[int] = None) -> torch.Tensor:
    """Read one image as uint8 (channels, image_size, image_size): centred square crop, then resize.

    Args:
        path: the image file.
        image_size: side of the output.
        channels: 1 (grey, ITU-R 601 luma) or 3 (RGB; alpha is dropped).
        crop_size: side of the centred square cut before resizing; None or larger than the image
            means the largest centred square.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is not a readable image.
    """
    mode = "L" if channels == 1 else "RGB"
    try:
        with Image.open(path) as image:
            width, height = image.size
            side = min(width, height) if crop_size is None else min(crop_size, width, height)
            # Integer offsets rounded like torchvision's CenterCrop; cropping before resizing keeps
            # the filter from reading pixels outside the crop (resize(box=...) would).
            left, top = int(round((width - side) / 2)), int(round((height - side) / 2))
            square = image.convert(mode).crop((left, top, left + side, top + side))
            pixels = np.asarray(square.resize((image_size, image_size), Image.Resampling.BILINEAR), dtype=np.uint8)
    except FileNotFoundError:
        raise MissingFile(f"image file missing: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise InvalidValue(f"{path}: not a readable image ({err})") from err
    tensor = torch.from_numpy(pixels.copy())
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


class LazyImageDataset(Dataset):
    """Images decoded from their files on access; batches are stacked uint8 tensors.

    Args:
        paths: image files (kept as strings: cheap to pickle into DataLoader workers).
        labels: int64 (N,), -1 for unlabelled images.
        image_size: side of the square images returned.
        channels: 1 or 3.
        crop_size: side of the centred square cut before resizing (None: the shorter side).
        attributes: optional float (N, A) per-image attributes, returned as ``attributes``.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: torch.Tensor,
        image_size: int,
        channels: int = 3,
        crop_size: Optional[int] = None,
        attributes: Optional[torch.Tensor] = None,
    ) -> None:
        if len(labels) != len(paths) or (attributes is not None and len(attributes) != len(paths)):
            raise InvalidValue(f"{len(paths)} paths but {len(labels)} labels / attributes")
        self.paths = [str(p) for p in paths]
        self.labels = labels
        self.image_size, self.channels, self.crop_size = image_size, channels, crop_size
        self.attributes = attributes

    def subset(self, index: torch.Tensor) -> "LazyImageDataset":
        """The items at ``index`` (a `max_train_images` subset)."""
        return LazyImageDataset(
            [self.paths[i] for i in index.tolist()], self.labels[index], self.image_size, self.channels,
            self.crop_size, None if self.attributes is None else self.attributes[index],
        )

    def files(self) -> list[str]:
        return list(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(list(indices), dtype=torch.long)
        images = [load_image(self.paths[i], self.image_size, self.channels, self.crop_size) for i in index.tolist()]
        empty = torch.empty((0, self.channels, self.image_size, self.image_size), dtype=torch.uint8)
        batch = {"image": torch.stack(images) if images else empty, "label": self.labels.index_select(0, index), "index": index}
        if self.attributes is not None:
            batch["attributes"] = self.attributes.index_select(0, index)
        return batch

    def load_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image decoded into memory, with the labels (for small sets only)."""
        batch = self.__getitems__(range(len(self)))
        return batch["image"], batch["label"]


class LazyImageDataModule(ImageDataModule):
    """An `ImageDataModule` whose splits are `LazyImageDataset` s built by `lazy_split`.

    `read_split` (the base contract) decodes a whole split into memory: use it on small sets only.
    Subclasses screen their files with `screen_files` (``bad_files``: ``error`` or ``skip``).
    """

    bad_files: BadFiles = "error"

    def screen_files(self, paths: Sequence[str | Path], check: Callable[[Path], Optional[str]] = image_file_problem) -> list[bool]:
        """Which of ``paths`` are usable; an unusable one raises a `DataError` naming it, or with
        ``bad_files: skip`` is left out with one warning naming it."""
        keep = []
        for path in paths:
            problem = check(Path(path))
            keep.append(problem is None)
            if problem is None:
                continue
            if self.bad_files == "error" and problem == "file missing":
                raise DataNotFoundError(self.dataset_name, f"the listed file {Path(path).name}", [Path(path).parent],
                                        "The copy is incomplete: re-download or re-extract the dataset, or set "
                                        "--data.init_args.bad_files skip to leave missing files out")
            if self.bad_files == "error":
                raise DataError(f"{path}: {problem}. Replace the file (re-download the dataset) or delete it, "
                                "or set --data.init_args.bad_files skip to leave unusable files out")
            warnings.warn(f"skipping {path}: {problem}", stacklevel=2)
            self.skipped_files.append(str(path))
        return keep

    @property
    def skipped_files(self) -> list[str]:
        """Files left out as unusable (``bad_files: skip``)."""
        if "_skipped" not in self.__dict__:
            self._skipped: list[str] = []
        return self._skipped

    def decode_all(self) -> None:
        """Decodes every image file of every split; a failure is a `DataError` naming the files."""
        bad = []
        for split in SPLITS:
            for path in self._dataset(split).files():
                problem = image_file_problem(path, full_decode=True)
                if problem is not None:
                    bad.append(f"{path} ({problem})")
        if bad:
            raise DataError(f"{len(bad)} image files do not decode, e.g. {bad[0]}; replace or delete them")

    def lazy_split(self, split: str) -> LazyImageDataset:
        """The lazily decoded dataset of ``split`` ("train", "val" or "test")."""
        raise NotImplementedError(f"{type(self).__name__} must implement lazy_split()")

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._dataset(split).load_all()

    def _dataset(self, split: str) -> LazyImageDataset:  # type: ignore[override]
        # The base's hook builds an in-memory dataset from read_split; here the split stays on disk.
        if split not in SPLITS:
            raise InvalidValue(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self._datasets:
            self._datasets[split] = self.limit_train(split, self.lazy_split(split))  # type: ignore[assignment]
        return self._datasets[split]  # type: ignore[return-value]


class ImageFolderDataModule(LazyImageDataModule):
    """Every image under a folder (recursively: png, jpg, jpeg, webp), with a seeded hold-out split.

    Images are centre-cropped to a square and resized to ``image_size``; a fixed, seeded share
    of them (``val_fraction``) is held out and serves as both val and test. Labels are -1
    (``num_classes`` 0), or with ``labels_from_subfolders`` the index of the image's top-level
    subfolder in the sorted list of subfolder names (`class_names`), like torchvision's ImageFolder.

    Args:
        data_dir: the folder of images; ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes (decoding happens there).
        image_size: side of the square images.
        download: accepted for a uniform interface; a folder cannot be downloaded.
        seed: seed of the training order.
        pin_memory: pin batches for faster host-to-GPU copies.
        channels: 1 (grey) or 3 (RGB).
        val_fraction: share of the images held out for val (= test), in [0, 1).
        split_seed: seed of the hold-out choice (separate from ``seed``, so the hold-out stays put
            when the training order changes).
        labels_from_subfolders: label images by their top-level subfolder.
        crop_size: side of the centred square cut before resizing (None: the shorter side).
        max_train_images: train on this many images only (see `ImageDataModule`).
        random_flip: mirror training images left-right at random (see `ImageDataModule`).
        bad_files: ``skip`` (default: a scraped folder often holds a few broken files; each is
            named in a warning) or ``error``.
    """

    dataset_name = "image folder"
    _channels = 3
    _num_classes = 0

    def __init__(
        self,
        data_dir: Optional[str] = None,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 64,
        download: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        channels: int = 3,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        labels_from_subfolders: bool = False,
        crop_size: Optional[int] = None,
        max_train_images: Optional[int] = None,
        random_flip: bool = False,
        bad_files: BadFiles = "skip",
    ) -> None:
        if channels not in (1, 3):
            raise InvalidValue(f"channels must be 1 or 3, got {channels!r} (set it with --data.init_args.channels)")
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
            raise InvalidValue(f"val_fraction must be a number in [0, 1), got {val_fraction!r} (--data.init_args.val_fraction)")
        check_int("split_seed", split_seed, 0)
        if crop_size is not None:
            check_int("crop_size", crop_size, 1)
        if bad_files not in ("error", "skip"):
            raise InvalidValue(f"bad_files must be 'error' or 'skip', got {bad_files!r} (--data.init_args.bad_files)")
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory,
                         max_train_images=max_train_images, random_flip=random_flip)
        self.bad_files = bad_files
        self._channels = channels
        self.val_fraction, self.split_seed = float(val_fraction), split_seed
        self.labels_from_subfolders, self.crop_size = labels_from_subfolders, crop_size
        self._index: Optional[tuple[list[Path], torch.Tensor]] = None

    @property
    def class_names(self) -> list[str]:
        """Sorted top-level subfolder names (the label of index i is ``class_names[i]``); [] without labels."""
        if not self.labels_from_subfolders:
            return []
        self._check_folder()
        return sorted(p.name for p in self.data_dir.iterdir() if p.is_dir() and not ignored_entry(p.name))

    @property
    def num_classes(self) -> int:
        """Number of subfolders with ``labels_from_subfolders`` (lists the folder), else 0."""
        return len(self.class_names)

    def lazy_split(self, split: str) -> LazyImageDataset:
        paths, labels = self._all_images()
        train, holdout = holdout_indices(len(paths), self.val_fraction, self.split_seed)
        index = train if split == "train" else holdout
        return LazyImageDataset(
            [paths[i] for i in index.tolist()], labels[index], self.image_size, self.channels, self.crop_size
        )

    def _all_images(self) -> tuple[list[Path], torch.Tensor]:
        """All image paths and their labels, listed once."""
        if self._index is None:
            self._check_folder()
            paths = find_images(self.data_dir)
            if not paths:
                raise DataNotFoundError(
                    self.dataset_name, f"images ({', '.join('*' + e for e in IMAGE_EXTENSIONS)})", [self.data_dir],
                    "Put the images there (subfolders are searched), or point --data.init_args.data_dir at their folder.",
                )
            paths = [p for p, ok in zip(paths, self.screen_files(paths)) if ok]
            if not paths:
                raise DataError(f"every image file under {self.data_dir} is unusable (see the warnings)")
            self.layout_found = "class subfolders (<class>/*)" if self.labels_from_subfolders else "images, searched recursively"
            self.root_found = self.data_dir
            self._index = paths, self._labels(paths)
        return self._index

    def _labels(self, paths: list[Path]) -> torch.Tensor:
        if not self.labels_from_subfolders:
            return torch.full((len(paths),), -1, dtype=torch.int64)
        classes = {name: i for i, name in enumerate(self.class_names)}
        labels = []
        for path in paths:
            parts = path.relative_to(self.data_dir).parts
            if len(parts) < 2:
                raise InvalidValue(
                    f"labels_from_subfolders is set but {path} is not inside a subfolder of {self.data_dir}; "
                    "move it into a class folder or set --data.init_args.labels_from_subfolders false"
                )
            labels.append(classes[parts[0]])
        return torch.tensor(labels, dtype=torch.int64)

    def _check_folder(self) -> None:
        if not self.data_dir.is_dir():
            raise DataNotFoundError(
                self.dataset_name, f"the folder {self.data_dir}", [self.data_dir],
                f"Point --data.init_args.data_dir at a folder of images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively).",
            )
