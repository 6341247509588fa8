"""Image-to-image translation datasets in the pix2pix and CycleGAN layouts.

`PairedImageDataModule` reads the pix2pix datasets (Isola et al. 2017, arXiv:1611.07004)::

    <data_dir>/<name>/{train,val,test}/*.jpg     each file: A (left half) | B (right half)

and `UnpairedImageDataModule` the CycleGAN ones (Zhu et al. 2017, arXiv:1703.10593)::

    <data_dir>/<name>/{trainA,trainB,testA,testB}/*.jpg

``scripts/download_pix2pix.sh NAME`` and ``scripts/download_cyclegan.sh NAME`` fetch them (nothing
downloads from here). The dataset folder is found as ``<data_dir>/<name>``, as ``<data_dir>``
itself when it holds the split folders, or as any folder named ``<name>`` up to three levels
below ``<data_dir>`` (a tar unpacked into a folder of its own name, the CycleGAN repository's
``datasets/<name>``). Files other than images (``.DS_Store``, ``__MACOSX/``) are ignored. Batches are ``{"A": (B,3,H,W), "B": (B,3,H,W), "image": (B,3,H,W)}``, uint8 in
the DataLoader and float in [-1, 1] on the device; ``image`` is the target domain (B after
``direction``), so real-image statistics (FID reference) are those of the target domain.

Training augmentation (pix2pix Sec. 6.2, CycleGAN Sec. 7.1): random jitter, i.e. resize to
``load_size`` x ``load_size`` (286 for 256 crops) and cut a random ``image_size`` crop, then a
random horizontal mirror. In a pair, A and B get the *same* crop and mirror (their pixels must stay
aligned); in the unpaired set they are drawn independently. Val/test images are resized to
``image_size`` with no jitter.

Reproducible and resumable: the training sampler (`TranslationSampler`) yields ``(index, seed)``
with the seed a pure function of (``seed``, epoch, index), so the crop, the mirror and, for the
unpaired set, the random partner B of each A depend on nothing else: not on worker processes,
not on the global RNG, not on where a run was interrupted. Mid-epoch resume then works as for the
other datamodules (`datamodules.base.ImageDataModule`).

Bad files: when a split is listed, every file's header is read. A file that is not an image, or
a paired file that is not twice as wide as high (A and B side by side), is an error naming the
file (``bad_files: error``, the default), or with ``bad_files: skip`` is left out with a warning
naming it. An empty or missing folder is an error that says the expected layout and how to get
the data. The end of each JPEG/PNG is checked too (`datamodules.image_folder.image_file_problem`),
so a file cut short by an interrupted download is found at setup as well. Images of any size are
accepted (they are resized).

``max_train_images`` keeps a seeded subset of the training pairs (paired) or of each training
domain (unpaired; A and B are drawn independently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from datamodules.base import (
    DataError, DataNotFoundError, ResumableSampler, candidate_dirs, check_int, ignored_entry, subset_indices, to_model_range,
)
from datamodules.image_folder import IMAGE_EXTENSIONS, LazyImageDataModule, image_file_problem
from genmodels.errors import InvalidValue, MissingFile

__all__ = [
    "PairedImageDataModule", "UnpairedImageDataModule", "PairedImageDataset", "UnpairedImageDataset",
    "TranslationSampler", "jitter_params",
]

Item = Union[int, tuple[int, int]]  # an index (val/test: no augmentation) or (index, seed) (training)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one training item: a pure function of (seed, epoch, index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class TranslationSampler(ResumableSampler):
    """`ResumableSampler` yielding ``(index, seed)``: the seed drives the item's random augmentation."""

    def __iter__(self):  # type: ignore[override]
        indices = list(super().__iter__())  # applies (and clears) a pending resume skip
        return iter([(i, item_seed(self.seed, self.epoch, i)) for i in indices])


def jitter_params(rng: np.random.Generator, image_size: int, load_size: int, flip: bool) -> tuple[int, int, bool]:
    """(left, top, mirror) of one random jitter: a crop of ``image_size`` in a ``load_size`` square."""
    left, top = (int(v) for v in rng.integers(0, load_size - image_size + 1, size=2))
    return left, top, bool(flip and rng.random() < 0.5)


def _read(path: str, mode: str = "RGB") -> Image.Image:
    """Decode a whole file (a truncated one fails here, with its name)."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except FileNotFoundError:
        raise MissingFile(f"image file missing: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidValue(f"{path}: not a readable image, truncated or corrupt ({err}); re-download the dataset") from err


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _transform(
    images: list[Image.Image], image_size: int, load_size: int, params: Optional[tuple[int, int, bool]]
) -> list[torch.Tensor]:
    """Resize (and with ``params``, jitter and mirror) images identically; uint8 (3, S, S) each."""
    out = []
    for image in images:
        if params is None:
            image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
        else:
            left, top, mirror = params
            image = image.resize((load_size, load_size), Image.Resampling.BICUBIC)
            image = image.crop((left, top, left + image_size, top + image_size))
            if mirror:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(_to_tensor(image))
    return out


def _split_item(item: Item) -> tuple[int, Optional[int]]:
    if isinstance(item, (tuple, list)):
        return int(item[0]), int(item[1])
    return int(item), None


class _TranslationDataset(Dataset):
    """Shared batching: ``__getitems__`` stacks uint8 ``A``, ``B`` and ``image`` (= B)."""

    image_size: int

    def __getitem__(self, item: Item) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([item]).items()}

    def __getitems__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        pairs = [self.pair(*_split_item(item)) for item in items]
        if not pairs:
            empty = torch.empty((0, 3, self.image_size, self.image_size), dtype=torch.uint8)
            return {"A": empty, "B": empty, "image": empty}
        a, b = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        return {"A": a, "B": b, "image": b}

    def pair(self, index: int, seed: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class PairedImageDataset(_TranslationDataset):
    """pix2pix files, A | B side by side; ``direction`` ``BtoA`` swaps the halves.

    Args:
        paths: the files (each twice as wide as high).
        image_size: side of the returned images.
        load_size: side of the resize before the random crop (training items only).
        direction: ``AtoB`` (source = left half) or ``BtoA``.
        flip: random horizontal mirror for training items.
    """

    def __init__(self, paths: Sequence[Union[str, Path]], image_size: int, load_size: int,
                 direction: str = "AtoB", flip: bool = True) -> None:
        self.paths = [str(p) for p in paths]
        self.image_size, self.load_size, self.direction, self.flip = image_size, load_size, direction, flip

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labels(self) -> torch.Tensor:
        return torch.full((len(self.paths),), -1, dtype=torch.int64)

    def subset(self, index: torch.Tensor) -> "PairedImageDataset":
        return PairedImageDataset([self.paths[i] for i in index.tolist()], self.image_size, self.load_size,
                                  self.direction, self.flip)

    def files(self) -> list[str]:
        return list(self.paths)

    def pair(self, index: int, seed: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
        whole = _read(self.paths[index])
        width, height = whole.size
        half = width // 2
        left, right = whole.crop((0, 0, half, height)), whole.crop((half, 0, 2 * half, height))
        params = None if seed is None else jitter_params(np.random.default_rng(seed), self.image_size, self.load_size, self.flip)
        a, b = _transform([left, right], self.image_size, self.load_size, params)  # one crop/mirror for both
        return (a, b) if self.direction == "AtoB" else (b, a)


class UnpairedImageDataset(_TranslationDataset):
    """CycleGAN domains: item i is A[i] with a partner from B, random per (seed, epoch, i) in training.

    Without a seed (val/test) the partner is ``B[i % len(B)]`` and nothing is jittered.
    """

    def __init__(self, paths_a: Sequence[Union[str, Path]], paths_b: Sequence[Union[str, Path]], image_size: int,
                 load_size: int, flip: bool = True) -> None:
        self.paths_a, self.paths_b = [str(p) for p in paths_a], [str(p) for p in paths_b]
        self.image_size, self.load_size, self.flip = image_size, load_size, flip

    def __len__(self) -> int:
        return len(self.paths_a)

    def subset(self, index_a: torch.Tensor, index_b: torch.Tensor) -> "UnpairedImageDataset":
        return UnpairedImageDataset([self.paths_a[i] for i in index_a.tolist()], [self.paths_b[i] for i in index_b.tolist()],
                                    self.image_size, self.load_size, self.flip)

    def files(self) -> list[str]:
        return self.paths_a + self.paths_b

    def pair(self, index: int, seed: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if seed is None:
            partner, params = index % len(self.paths_b), (None, None)
        else:
            rng = np.random.default_rng(seed)
            partner = int(rng.integers(len(self.paths_b)))
            # Independent jitter per domain: the images are not aligned, nothing to keep together.
            params = tuple(jitter_params(rng, self.image_size, self.load_size, self.flip) for _ in range(2))
        (a,) = _transform([_read(self.paths_a[index])], self.image_size, self.load_size, params[0])
        (b,) = _transform([_read(self.paths_b[partner])], self.image_size, self.load_size, params[1])
        return a, b


# ---------------------------------------------------------------------------------------------


class _TranslationDataModule(LazyImageDataModule):
    """Shared options, listing and loaders of the paired and unpaired datamodules."""

    _channels = 3
    _num_classes = 0
    layout = ""
    download_script = ""

    def __init__(
        self,
        name: str,
        data_dir: Optional[str] = None,
        batch_size: int = 1,
        num_workers: int = 0,
        image_size: int = 256,
        load_size: Optional[int] = None,
        flip: bool = True,
        bad_files: Literal["error", "skip"] = "error",
        seed: int = 0,
        pin_memory: bool = False,
        download: bool = False,
        max_train_images: Optional[int] = None,
    ) -> None:
        if not name or "/" in name:
            raise InvalidValue(f"name must be a dataset folder name such as 'facades', got {name!r} (--data.init_args.name)")
        if bad_files not in ("error", "skip"):
            raise InvalidValue(f"bad_files must be 'error' or 'skip', got {bad_files!r} (--data.init_args.bad_files)")
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory,
                         max_train_images=max_train_images)
        # pix2pix/CycleGAN jitter 256 crops out of 286: keep that ratio for other sizes.
        self.load_size = int(load_size) if load_size is not None else round(image_size * 286 / 256)
        check_int("load_size", self.load_size, image_size)
        self.name, self.flip, self.bad_files = name, flip, bad_files
        self.dataset_name = name

    #: Folders whose presence marks the dataset's folder.
    split_folders: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        """The dataset's folder: the first of ``<data_dir>/<name>``, ``<data_dir>`` and folders named
        ``<name>`` below it that holds the split folders; ``<data_dir>/<name>`` if none does."""
        if self.root_found is None:
            for directory in candidate_dirs(self.data_dir, [self.data_dir / self.name, self.data_dir], depth=3,
                                            accept=lambda rel: rel.name == self.name):
                if all((directory / split).is_dir() for split in self.split_folders):
                    self.root_found = directory
                    nested = "" if directory in (self.data_dir / self.name, self.data_dir) else f" (found at {directory})"
                    self.layout_found = self.layout + nested
                    break
            else:
                return self.data_dir / self.name
        return self.root_found

    def download_files(self) -> None:
        raise MissingFile(
            f"{type(self).__name__} does not download: run `bash {self.download_script} {self.name} {self.data_dir}` "
            f"(it fetches and unpacks into {self.root})"
        )

    # -- listing ----------------------------------------------------------------------------------
    def list_folder(self, folder: Path, paired: bool = False) -> list[Path]:
        """Image files of ``folder`` (sorted), headers checked; bad ones raise or are skipped."""
        if not folder.is_dir() or not (paths := _image_files(folder)):
            what = f"the folder {folder.name}/" if not folder.is_dir() else f"images ({', '.join(IMAGE_EXTENSIONS)}) in {folder.name}/"
            raise DataNotFoundError(
                self.name, what, [folder],
                f"{type(self).__name__} expects the layout {self.layout} under {self.data_dir}; get the dataset with "
                f"`bash {self.download_script} {self.name} {self.data_dir}` or point --data.init_args.data_dir / "
                "--data.init_args.name at it.",
            )
        keep = self.screen_files(paths, check=lambda path: _header_problem(path, paired))
        good = [path for path, ok in zip(paths, keep) if ok]
        if not good:
            raise DataError(f"{folder}: every image file was skipped as unreadable")
        return good

    # -- loaders and batches --------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        num_replicas, rank = self._world()
        sampler = TranslationSampler(dataset, num_replicas, rank, seed=self.seed, on_iter=self._on_train_iter)
        self.check_batch_size(len(dataset))
        self._position_sampler(sampler)
        return self._loader(dataset, sampler=sampler, drop_last=True)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict):
            batch = {k: to_model_range(v) if k in ("A", "B", "image") and v.dtype == torch.uint8 else v for k, v in batch.items()}
        return batch

    def example_batch(self, n: int, split: str = "val") -> dict[str, torch.Tensor]:
        """The first ``n`` (or fewer) pairs of ``split``, unaugmented, float in [-1, 1] on the CPU."""
        dataset = self._dataset(split)
        batch = dataset.__getitems__(list(range(min(n, len(dataset)))))
        return {k: to_model_range(v) for k, v in batch.items()}


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not ignored_entry(p.name) and p.is_file())


def _header_problem(path: Path, paired: bool) -> Optional[str]:
    """Why ``path`` cannot be used (from its header and its last bytes), or None."""
    problem = image_file_problem(path)
    if problem is not None:
        return problem
    with Image.open(path) as image:
        width, height = image.size
    if paired and width != 2 * height:
        return (f"a paired image must be twice as wide as high (A and B side by side), got {width}x{height}; "
                "is this the pix2pix layout?")
    return None


class PairedImageDataModule(_TranslationDataModule):
    """pix2pix datasets: ``<data_dir>/<name>/{train,val,test}/`` of A|B files.

    Args:
        name: the dataset folder (``facades``, ``maps``, ``edges2shoes``, ``cityscapes``, ...).
        direction: ``AtoB`` (left half is the source) or ``BtoA``; maps aerial -> map is ``AtoB``,
            facades labels -> photo is ``BtoA`` as in the paper.
        data_dir: the folder holding ``<name>/``; ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: pairs per batch (1 in the paper).
        num_workers: DataLoader workers (JPEG decoding happens there).
        image_size: side of the crops the model sees (256).
        load_size: side of the resize before the random crop (default ``image_size * 286 / 256``).
        flip: random horizontal mirror in training (the same mirror for A and B), reproducible per
            (seed, epoch, image): this datamodule's ``random_flip``.
        bad_files: ``error`` or ``skip`` (with a warning) for unreadable / not-2:1 files.
        seed: seed of the training order and of the augmentation.
        pin_memory: pin batches for host-to-GPU copies.
        download: only raises a hint to run ``scripts/download_pix2pix.sh``.
        max_train_images: train on this many pairs only (a subset fixed by ``seed``).

    A missing ``val`` folder falls back to ``test`` and a missing ``test`` to ``val`` (maps and
    edges2shoes come with train and val only).
    """

    layout = "pix2pix (<name>/{train,val,test}/*.jpg, A|B side by side)"
    download_script = "scripts/download_pix2pix.sh"
    split_folders = ("train",)

    def __init__(self, name: str = "facades", direction: Literal["AtoB", "BtoA"] = "AtoB", **kwargs: Any) -> None:
        """``kwargs``: the options every translation datamodule takes (data_dir, batch_size, ...)."""
        if direction not in ("AtoB", "BtoA"):
            raise InvalidValue(f"direction must be 'AtoB' or 'BtoA', got {direction!r} (--data.init_args.direction)")
        super().__init__(name, **kwargs)
        self.direction = direction

    def lazy_split(self, split: str) -> PairedImageDataset:  # type: ignore[override]
        folder = self.root / split
        if split != "train" and not folder.is_dir():
            folder = self.root / ("test" if split == "val" else "val")  # maps and edges2shoes have no test
        return PairedImageDataset(self.list_folder(folder, paired=True), self.image_size, self.load_size, self.direction, self.flip)


class UnpairedImageDataModule(_TranslationDataModule):
    """CycleGAN datasets: ``<data_dir>/<name>/{trainA,trainB,testA,testB}/``.

    One epoch visits every image of ``trainA`` once, each with a random ``trainB`` partner. Val and
    test both read ``testA`` / ``testB`` (the CycleGAN datasets have no val split).

    Args:
        name: the dataset folder (``horse2zebra``, ``monet2photo``, ``summer2winter_yosemite``, ...).
        data_dir, batch_size, num_workers, image_size, load_size, flip, bad_files, seed, pin_memory,
            download: as for `PairedImageDataModule`.
        max_train_images: keep this many images of each training domain (seeded, independently).
    """

    layout = "CycleGAN (<name>/{trainA,trainB,testA,testB}/*.jpg)"
    download_script = "scripts/download_cyclegan.sh"
    split_folders = ("trainA", "trainB")

    def __init__(self, name: str = "horse2zebra", **kwargs: Any) -> None:
        """``kwargs``: the options every translation datamodule takes (data_dir, batch_size, ...)."""
        super().__init__(name, **kwargs)

    def limit_train(self, split: str, dataset: Any) -> Any:
        # The domains are unaligned and of different sizes: each keeps its own seeded subset.
        if split != "train" or self.max_train_images is None:
            return dataset
        n = self.max_train_images
        self._train_total = len(dataset)
        unlabelled = lambda count: torch.full((count,), -1, dtype=torch.int64)  # noqa: E731
        return dataset.subset(subset_indices(unlabelled(len(dataset.paths_a)), n, self.seed),
                              subset_indices(unlabelled(len(dataset.paths_b)), n, self.seed + 1))

    def lazy_split(self, split: str) -> UnpairedImageDataset:  # type: ignore[override]
        prefix = "train" if split == "train" else "test"
        return UnpairedImageDataset(
            self.list_folder(self.root / f"{prefix}A"), self.list_folder(self.root / f"{prefix}B"),
            self.image_size, self.load_size, self.flip,
        )
