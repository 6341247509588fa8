"""Shared machinery for small image datasets that fit in memory.

`ImageDataModule` reads a dataset split once (through a subclass hook that parses the real files),
resizes it once, and keeps it as uint8 tensors. Batches leave the DataLoader as
``{"image": uint8 (B,C,H,W), "label": int64 (B,)}`` (four times less to copy to the device than
float32) and are turned into float images in [-1, 1] on the device by `on_after_batch_transfer`.

Training order comes from `ResumableSampler`, a `DistributedSampler` whose permutation depends only
on (seed, epoch) and which can start part-way into an epoch. Together with the datamodule's
`state_dict` (epoch and batches consumed) this gives exact mid-epoch resume: a run restored from a
checkpoint taken after k batches sees the remaining batches of that epoch, then the same epochs an
uninterrupted run would have seen (trap 30 of the field notes: plain DataLoaders replay or skip
data on resume).

Resume assumes the same dataset, batch size, seed and number of ranks as the interrupted run.

Limited data and augmentation, shared by every datamodule built on this base:

- ``max_train_images: N`` trains on a subset of N training images, a function of (``seed``, the
  labels) only: class-stratified (each class keeps its share, largest remainders rounded up)
  where labels exist, a uniform random choice otherwise (StyleGAN2-ADA's ``--subset`` draws its
  subset with the run's seed in the same way). Every rank and every resume computes the same one.
- ``random_flip`` mirrors training images left-right with probability 1/2, on the device; whether
  image i is mirrored in epoch e is a function of (``seed``, e, i) only, so a resumed run sees the
  same mirrored images as an uninterrupted one (ProGAN/StyleGAN's ``mirror_augment``).

Discovery without training: `ImageDataModule.describe` reads the splits and returns a
`DataReport` (layout found, root, counts, image shape, classes, samples); ``genmodels check-data``
prints it. Missing files raise `DataNotFoundError` and unusable files `DataError`, both one-line
`genmodels.errors.UserError` s that name the path and say how to fix it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from genmodels.errors import UserError, InvalidValue
from genmodels.images import IGNORED_DIRS, ignored_entry  # noqa: F401  (datamodules' name for them)

#: Environment variable naming the data root when ``data_dir`` is not given.
DATA_ENV_VAR = "GENMODELS_DATA"
SPLITS = ("train", "val", "test")

# Resizing a whole dataset in float32 at once can take gigabytes (50k CIFAR images at 64 px is
# 2.4 GB); chunks bound the peak memory without a measurable cost in speed.
_RESIZE_CHUNK = 2048

_STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


#: Folders that archives and operating systems add beside the data: never part of a dataset.


class DataNotFoundError(UserError, FileNotFoundError):
    """The files of a dataset are missing: says what is missing, where it looked and how to get it."""

    def __init__(self, dataset: str, missing: str, searched: Sequence[Path], how_to_get: str) -> None:
        self.dataset, self.missing, self.searched, self.how_to_get = dataset, missing, list(searched), how_to_get
        places = ", ".join(str(p) for p in self.searched[:6]) + (", ..." if len(self.searched) > 6 else "")
        super().__init__(f"{dataset}: {missing} not found (looked in {places}). {how_to_get}")


class DownloadError(UserError, ConnectionError):
    """``download=True`` could not fetch the files (offline node, refused mirror); the message says
    how to get them by hand and never suggests the download that just failed."""


def without_download_advice(how_to_get: str) -> str:
    """A dataset's "how to get it" text minus its "rerun with --data.init_args.download true" part."""
    return re.sub(r"rerun with --data\.init_args\.download true \([^)]*\), or ", "", how_to_get)


def fetch_or_explain(dataset: str, how_to_get: str, fetch: Callable[[], Any]) -> None:
    """Run ``fetch()`` (a download, e.g. a torchvision dataset with ``download=True``); any failure
    becomes a one-line `DownloadError` saying how to get the files by hand."""
    try:
        fetch()
    except Exception as err:  # network errors come in many types; all need the same advice
        raise DownloadError(
            f"downloading {dataset} failed ({' '.join(str(err).split())[:200]}); this machine may be offline. "
            + without_download_advice(how_to_get).replace("To get them, ", "To get them by hand, ")
        ) from None


class DataError(UserError, ValueError):
    """A dataset file that cannot be used (corrupt, truncated, wrong format), or a setting the data
    cannot satisfy; the message names the file or the numbers."""


def candidate_dirs(root: Path, preferred: Sequence[Path] = (), depth: int = 2,
                   accept: Optional[Callable[[Path], bool]] = None) -> Iterator[Path]:
    """Directories where a dataset may sit: ``preferred`` first, then ``root`` and its subfolders
    breadth-first down to ``depth`` levels (an archive's extra top folder, a mirror's nesting).

    ``accept(relative_path)`` filters the subfolders yielded (not those descended into). Lazy, so
    a search stops listing folders as soon as the caller finds the dataset.
    """
    seen: set[Path] = set()
    for directory in [*preferred, root]:
        if directory not in seen and directory.is_dir():
            seen.add(directory)
            yield directory
    frontier = [root]
    for _ in range(depth):
        deeper = []
        for directory in frontier:
            try:
                children = sorted(c for c in directory.iterdir() if not ignored_entry(c.name) and c.is_dir())
            except OSError:
                continue
            for child in children:
                deeper.append(child)
                if child not in seen and (accept is None or accept(child.relative_to(root))):
                    seen.add(child)
                    yield child
        frontier = deeper


def searched_dirs(preferred: Sequence[Path], candidates: Iterable[Path]) -> list[Path]:
    """The folders a failed search looked in, for its error message: the preferred ones (even if
    absent, they say where the files belong) and every other candidate."""
    return list(dict.fromkeys([*preferred, *candidates]))


def subset_indices(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size`` items drawn with ``seed``, class-stratified when labels exist.

    Each class c of n_c items gets floor(size * n_c / N) places, the places left over go to the
    classes with the largest remainders (ties: lower label first), and its items are a seeded
    random choice among its own. Labels < 0 mean "unlabelled": a uniform random choice.
    """
    total = len(labels)
    if size >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    if total == 0 or bool((labels < 0).all()):
        return torch.randperm(total, generator=generator)[:size].sort().values
    classes, counts = labels.unique(sorted=True, return_counts=True)
    quota = counts.double() * size / total
    places = quota.floor().long()
    leftover = size - int(places.sum())
    order = sorted(range(len(classes)), key=lambda c: (-(float(quota[c]) - int(places[c])), c))
    for c in order[:leftover]:
        places[c] += 1
    chosen = []
    for c, label in enumerate(classes.tolist()):
        members = (labels == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[: int(places[c])]])
    return torch.cat(chosen).sort().values


def flip_decisions(seed: int, epoch: int, size: int) -> torch.Tensor:
    """Bool (size,): whether item i is mirrored in ``epoch``; a function of (seed, epoch, i) only."""
    return torch.from_numpy(np.random.default_rng([seed, epoch, 0x666C6970]).random(size) < 0.5)


def mirror(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirrors left-right the images (B, C, H, W) whose ``flip`` entry is True."""
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


@dataclass
class DataReport:
    """What `ImageDataModule.describe` found: printed by ``genmodels check-data``."""

    dataset: str
    layout: str
    root: str
    counts: dict[str, int]
    image_shape: tuple[int, int, int]
    num_classes: int = 0
    details: dict[str, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def format(self) -> str:
        c, h, w = self.image_shape
        lines = [
            f"dataset:    {self.dataset}",
            f"layout:     {self.layout}",
            f"root:       {self.root}",
            "images:     " + ", ".join(f"{split} {count:,}" for split, count in self.counts.items()),
            f"image size: {c}x{h}x{w} (channels x height x width, after preprocessing)",
        ]
        if self.num_classes:
            lines.append(f"classes:    {self.num_classes}")
        lines += [f"{key + ':':<11} {value}" for key, value in self.details.items()]
        lines += [f"sample:     {sample}" for sample in self.samples]
        if self.skipped:
            lines.append(f"skipped:    {len(self.skipped)} unusable files, e.g. {self.skipped[0]}")
        return "\n".join(lines)


def resolve_data_dir(data_dir: Optional[str]) -> Path:
    """Returns ``data_dir``, else ``$GENMODELS_DATA``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return Path(os.environ.get(DATA_ENV_VAR, "data")).expanduser()


def identity_collate(batch: Any) -> Any:
    """Returns the batch unchanged: `InMemoryImageDataset.__getitems__` already built it.

    A module-level function (not a lambda) so DataLoader workers can pickle it.
    """
    return batch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Maps uint8 pixels to float in [-1, 1]: 0 -> -1.0 and 255 -> 1.0 exactly."""
    return images.float() / 127.5 - 1


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resizes uint8 images (N,C,h,w) to (N,C,size,size), bilinear with antialiasing.

    Interpolation runs in float and is rounded back to uint8, so the in-memory copy stays small.
    """
    if images.shape[-2:] == (size, size):
        return images
    chunks = []
    for chunk in images.split(_RESIZE_CHUNK):
        resized = F.interpolate(
            chunk.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        chunks.append(resized.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(chunks) if chunks else images.new_empty((0, images.shape[1], size, size))


def check_optional_int(name: str, value: Any, minimum: int) -> None:
    if value is not None:
        check_int(name, value, minimum)


def check_int(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> None:
    """Raises a ValueError naming the config key unless ``value`` is an int in [``minimum``, ``maximum``]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        allowed = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
        raise InvalidValue(f"{name} must be {allowed}, got {value!r} (set it with --data.init_args.{name} <value>)")


#: Largest image side a datamodule resizes to (a 4096x4096x3 uint8 image is 48 MiB; a batch of them is GiBs).
MAX_IMAGE_SIZE = 4096


class InMemoryImageDataset(Dataset):
    """Images and labels held as tensors; batches are built by tensor indexing.

    Args:
        images: uint8 tensor (N, C, H, W).
        labels: int64 tensor (N,).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "label": self.labels[index]}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        # One gather per tensor instead of B `__getitem__` calls plus a stack in `default_collate`.
        # index_select, not `images[index]`: advanced indexing of a large uint8 tensor is ~500x slower.
        index = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        # "index" lets the datamodule mirror item i of epoch e reproducibly (`random_flip`); it is
        # removed from the batch on the device, before the model sees it.
        return {"image": self.images.index_select(0, index), "label": self.labels.index_select(0, index), "index": index}

    def subset(self, index: torch.Tensor) -> "InMemoryImageDataset":
        """The items at ``index`` (a `max_train_images` subset)."""
        return InMemoryImageDataset(self.images[index], self.labels[index])


class ResumableSampler(DistributedSampler):
    """Shuffling, rank-sharding sampler that can start part-way into an epoch.

    The order of an epoch depends only on ``(seed, epoch)`` (a local generator, as in
    `DistributedSampler`; the global RNG is never touched). Being a `DistributedSampler`, Lightning
    keeps it under DDP instead of injecting its own, and calls `set_epoch` at every epoch start.

    `resume_at(epoch, num_samples)` makes the *next* iteration skip the first ``num_samples``
    indices of this rank's shard, but only if that iteration is for ``epoch``: when Lightning has
    already moved on to another epoch, the skip is dropped.

    ``len()`` is the full shard length, also while a skip is pending. Lightning restores its own
    batch counter on resume and expects ``len(dataloader)`` to be the whole epoch, with the iterator
    yielding only the rest (the stateful-DataLoader convention); a shortened length would end the
    resumed epoch early and shorten every later epoch. `remaining` gives the shortened count.

    Args:
        dataset: the dataset to sample from (only its length is used).
        num_replicas: number of ranks sharing the epoch.
        rank: this rank, in ``[0, num_replicas)``.
        seed: shuffling seed; the permutation of epoch ``e`` is seeded with ``seed + e``.
        on_iter: called as ``on_iter(epoch, skipped)`` whenever a new iteration starts, so an
            owner can reset its count of consumed batches.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        on_iter: Optional[Callable[[int, int], None]] = None,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.on_iter = on_iter
        self._skip = 0
        self._skip_epoch = 0

    def resume_at(self, epoch: int, num_samples: int) -> None:
        """Sets the epoch and skips its first ``num_samples`` indices in the next iteration."""
        if not 0 <= num_samples <= self.num_samples:
            raise InvalidValue(f"cannot skip {num_samples} samples of a {self.num_samples}-sample shard")
        self.set_epoch(epoch)
        self._skip, self._skip_epoch = num_samples, epoch

    @property
    def pending_skip(self) -> int:
        """Indices the next iteration will skip (0 if the epoch changed since `resume_at`)."""
        return self._skip if self.epoch == self._skip_epoch else 0

    @property
    def remaining(self) -> int:
        """Number of indices the next iteration will yield."""
        return self.num_samples - self.pending_skip

    def __iter__(self) -> Iterator[int]:
        skip = self.pending_skip
        self._skip = 0  # the skip applies to one iteration only
        indices = list(super().__iter__())[skip:]
        if self.on_iter is not None:
            self.on_iter(self.epoch, skip)
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples


class ImageDataModule(pl.LightningDataModule):
    """Base for datasets of small labelled images kept in memory as uint8 tensors.

    Subclasses set ``dataset_name``, ``_channels`` and ``_num_classes`` and implement `read_split`
    (parse the files on disk) and, for datasets that can be fetched, `download_files` (called by
    `prepare_data` only when ``download=True``).

    Batches: the DataLoaders yield ``{"image": uint8 (B,C,H,W), "label": int64 (B,)}`` on the CPU;
    `on_after_batch_transfer` turns ``image`` into float in [-1, 1] on the device. Training drops
    the last incomplete batch and supports exact mid-epoch resume (see the module docstring).

    Args:
        data_dir: data root; ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes; 0 loads in the main process, which is usually
            fastest for in-memory tensors.
        image_size: side of the square images the model sees; the data is resized once in `setup`.
        download: fetch the files in `prepare_data` if they are missing. Nothing downloads otherwise.
        seed: seed of the training order (epoch ``e`` is shuffled with ``seed + e``).
        pin_memory: pin batches for faster host-to-GPU copies.
        on_device: hold the training split on the training device (the GPU) and gather each batch
            there: no per-batch host work and no host-to-device copy. For datasets that fit (as uint8:
            MNIST 47 MB, CIFAR-10 150 MB); needs ``num_workers=0`` and ``pin_memory=False``.
        max_train_images: train on this many training images only (a subset fixed by ``seed``,
            class-stratified where there are labels); ``None`` uses them all.
        random_flip: mirror training images left-right with probability 1/2, reproducibly per
            (``seed``, epoch, image).
    """

    #: How the files were found (set by the subclass's search; shown by ``check-data``).
    layout_found: str = ""
    root_found: Optional[Path] = None

    dataset_name: str = "images"
    _channels: int = 1
    _num_classes: int = 0
    _train_total: Optional[int] = None  # size of the training split before `max_train_images`

    def __init__(
        self,
        data_dir: Optional[str] = None,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
        download: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        on_device: bool = False,
        max_train_images: Optional[int] = None,
        random_flip: bool = False,
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_optional_int("max_train_images", max_train_images, 1)
        if on_device and (num_workers or pin_memory):
            raise InvalidValue(
                "on_device gathers batches on the training device in the main process; set "
                "--data.init_args.num_workers 0 and --data.init_args.pin_memory false with it"
            )
        check_int("num_workers", num_workers, 0)
        check_int("image_size", image_size, 8, MAX_IMAGE_SIZE)
        check_int("seed", seed, 0)
        self.save_hyperparameters()
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.download = download
        self.seed = seed
        self.pin_memory = pin_memory
        self.on_device = on_device
        self.max_train_images = max_train_images
        self.random_flip = random_flip
        self._flips: Optional[tuple[int, int, torch.Tensor]] = None  # (epoch, size, decisions)
        self._datasets: dict[str, InMemoryImageDataset] = {}
        self._device_train: Optional[InMemoryImageDataset] = None
        # Position in the training stream: epoch of the current train iteration and batches of it
        # consumed so far. `_resume` holds a loaded position until the next `train_dataloader()`.
        self._epoch = 0
        self._batches_consumed = 0
        self._resume: Optional[tuple[int, int]] = None

    # ----------------------------------------------------------------------------------------------
    # Shapes, known without reading any file (the CLI links them into the model).

    @property
    def channels(self) -> int:
        """Number of image channels."""
        return self._channels

    @property
    def num_classes(self) -> int:
        """Number of label classes."""
        return self._num_classes

    @property
    def class_names(self) -> list[str]:
        """Names of the classes 0..num_classes-1 where the files give them (CIFAR-10, folders), else []."""
        return []

    @property
    def skipped_files(self) -> list[str]:
        """Files left out as unusable (datasets read from files with ``bad_files: skip``); none here."""
        return []

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model sees."""
        return (self.channels, self.image_size, self.image_size)

    # ----------------------------------------------------------------------------------------------
    # Subclass hooks.

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads ``split`` ("train", "val" or "test") from disk at its native resolution.

        Returns:
            ``(images, labels)``: uint8 (N, C, h, w) and int64 (N,).

        Raises:
            FileNotFoundError: the files are missing (the message says where and how to get them).
            ValueError: a file is corrupt or truncated (the message names it).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement read_split()")

    def download_files(self) -> None:
        """Fetches the dataset into ``data_dir``; called by `prepare_data` only if ``download``."""

    # ----------------------------------------------------------------------------------------------
    # Lightning data hooks.

    def prepare_data(self) -> None:
        """Downloads the files when ``download=True`` (Lightning runs this on one process per node)."""
        if self.download:
            self.download_files()

    def setup(self, stage: Optional[str] = None) -> None:
        """Loads (once) the splits needed by ``stage``; ``None`` loads all of them.

        Fitting checks here, before any step, that a batch fits in the training set.
        """
        for split in _STAGE_SPLITS.get(stage, SPLITS) if stage else SPLITS:
            self._dataset(split)
        if stage == "fit":
            self.check_batch_size(len(self._dataset("train")))

    def check_batch_size(self, num_train: int) -> None:
        """Refuses a batch larger than the training images of one rank (training drops the last batch)."""
        num_replicas, _ = self._world()
        per_rank = num_train // num_replicas
        if per_rank < self.batch_size:
            ranks = f" ({per_rank} per rank on {num_replicas} ranks)" if num_replicas > 1 else ""
            raise DataError(
                f"batch_size={self.batch_size} is larger than the {num_train} training images of {self.dataset_name}{ranks}, "
                "and training drops incomplete batches; lower --data.init_args.batch_size"
                + (" or raise --data.init_args.max_train_images" if self.max_train_images else "")
            )

    def train_dataloader(self) -> DataLoader:
        dataset = self._training_dataset()
        num_replicas, rank = self._world()
        sampler = ResumableSampler(dataset, num_replicas, rank, seed=self.seed, on_iter=self._on_train_iter)
        self.check_batch_size(len(dataset))
        self._position_sampler(sampler)
        return self._loader(dataset, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("val"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("test"))

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Counted here, on the batch actually handed to the training step, rather than in the
        # sampler: the sampler (or DataLoader workers) may run ahead of what was consumed.
        if self.trainer is not None and self.trainer.training:
            self._batches_consumed += 1
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not isinstance(batch, dict):
            return batch
        batch = dict(batch)
        index = batch.pop("index", None)
        if "image" in batch and batch["image"].dtype == torch.uint8:
            # Only uint8 is converted, so a batch passing through twice is not rescaled twice.
            batch["image"] = to_model_range(batch["image"])
        if self.random_flip and index is not None and self.trainer is not None and self.trainer.training:
            batch["image"] = mirror(batch["image"], self.flip_decisions(self._epoch)[index.cpu()])
        return batch

    def flip_decisions(self, epoch: int) -> torch.Tensor:
        """Bool (N,) over the training set: which images ``random_flip`` mirrors in ``epoch``."""
        size = len(self._dataset("train"))
        if self._flips is None or self._flips[:2] != (epoch, size):
            self._flips = (epoch, size, flip_decisions(self.seed, epoch, size))
        return self._flips[2]

    # ----------------------------------------------------------------------------------------------
    # Exact mid-epoch resume.

    def state_dict(self) -> dict[str, Any]:
        """Position in the training stream: ``{"epoch": int, "batches_consumed": int}``."""
        return {"epoch": int(self._epoch), "batches_consumed": int(self._batches_consumed)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the position; the next `train_dataloader()` continues from it."""
        try:
            epoch, consumed = int(state_dict["epoch"]), int(state_dict["batches_consumed"])
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidValue(
                f"{type(self).__name__} state must be {{'epoch': int, 'batches_consumed': int}}, got {state_dict!r}"
            ) from err
        if epoch < 0 or consumed < 0:
            raise InvalidValue(f"{type(self).__name__} state must hold non-negative ints, got {state_dict!r}")
        self._epoch, self._batches_consumed = epoch, consumed
        self._resume = (epoch, consumed)
        # Lightning cannot see that this datamodule restores the data position itself, and warns
        # that a mid-epoch resume "is not resumable"; for this loader that warning is wrong.
        warnings.filterwarnings("ignore", message=r".*dataloader is not resumable.*")

    def _on_train_iter(self, epoch: int, skipped: int) -> None:
        # A new train iteration starts before any of its batches is consumed.
        self._epoch = epoch
        self._batches_consumed = skipped // self.batch_size

    def _position_sampler(self, sampler: ResumableSampler) -> None:
        """Starts the sampler at the loaded position (once), else at the current epoch."""
        if self._resume is None:
            sampler.set_epoch(self._epoch)
            return
        epoch, consumed = self._resume
        self._resume = None
        if consumed >= len(sampler) // self.batch_size:
            # Saved at the end of an epoch: the next batch is the first of the following one.
            epoch, consumed = epoch + 1, 0
        sampler.resume_at(epoch, consumed * self.batch_size)
        self._epoch, self._batches_consumed = epoch, consumed

    # ----------------------------------------------------------------------------------------------
    # Helpers.

    def _world(self) -> tuple[int, int]:
        """(num_replicas, rank) from the attached trainer, else a single process."""
        if self.trainer is None:
            return 1, 0
        return int(self.trainer.world_size), int(self.trainer.global_rank)

    def _training_dataset(self) -> Dataset:
        """The training split, copied once to the trainer's device when ``on_device``."""
        dataset = self._dataset("train")
        if not self.on_device or self.trainer is None:
            return dataset
        if not isinstance(dataset, InMemoryImageDataset):
            raise InvalidValue(f"on_device needs a dataset held in memory; {type(self).__name__} reads files lazily")
        device = self.trainer.strategy.root_device
        if self._device_train is None or self._device_train.images.device != device:
            self._device_train = InMemoryImageDataset(dataset.images.to(device), dataset.labels.to(device))
        return self._device_train

    def split_dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` ("train", "val" or "test") as the loaders see it, unshuffled.

        It indexes as the loaders do (``__getitems__`` returns ``{"image": uint8, "label", ...}``),
        never touches the training stream's resume position, and holds either tensors (``images``,
        ``labels``) or files decoded on access (``paths``). `genmodels.protocols.ImageSplits`.
        """
        return self._dataset(split)

    def split_images(self, split: str, limit: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` (default all) uint8 images (N, C, H, W) and int64 labels (N,) of ``split``.

        In the split's order, not shuffled, not flipped: the one way every command and metric reads
        "the images of a split" (reference statistics, classifier sets, anomaly scoring).
        """
        dataset = self._dataset(split)
        count = len(dataset) if limit is None else min(limit, len(dataset))
        if isinstance(dataset, InMemoryImageDataset):
            return dataset.images[:count], dataset.labels[:count]
        batch = dataset.__getitems__(range(count))
        return batch["image"], batch["label"]

    def _dataset(self, split: str) -> InMemoryImageDataset:
        """The in-memory dataset of ``split``, read and resized on first use."""
        if split not in SPLITS:
            raise InvalidValue(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self._datasets:
            images, labels = self.read_split(split)
            self._check_split(split, images, labels)
            dataset = InMemoryImageDataset(resize_uint8(images, self.image_size), labels)
            self._datasets[split] = self.limit_train(split, dataset)
        return self._datasets[split]

    def limit_train(self, split: str, dataset: Any) -> Any:
        """The `max_train_images` subset of the training split (other splits unchanged).

        ``dataset`` needs ``labels`` and ``subset(index)``.
        """
        if split != "train" or self.max_train_images is None:
            return dataset
        self._train_total = len(dataset)
        return dataset.subset(subset_indices(dataset.labels, self.max_train_images, self.seed))

    # ----------------------------------------------------------------------------------------------
    # Discovery without training (``genmodels check-data``).

    def describe(self, full_decode: bool = False) -> DataReport:
        """Finds and reads the dataset as `setup` would, and reports what it found.

        Args:
            full_decode: also decode every image file (slow; the setup check reads headers only).

        Raises:
            DataNotFoundError: files are missing. DataError: a file is unusable.
        """
        counts = {split: len(self._dataset(split)) for split in SPLITS}
        if self.max_train_images is not None:
            counts["train"] = len(self._dataset("train"))
        if full_decode:
            self.decode_all()
        return DataReport(
            dataset=self.dataset_name,
            layout=self.layout_found or "in memory",
            root=str(self.root_found or self.data_dir),
            counts=counts,
            image_shape=self.image_shape,
            num_classes=self.num_classes,
            details=self.report_details(),
            samples=self.sample_descriptions(3),
            skipped=list(self.skipped_files),
        )

    def report_details(self) -> dict[str, str]:
        """Extra lines of the report (class names, attributes, vocabulary...)."""
        details = {}
        if self.max_train_images is not None:
            total = self._train_total
            details["subset"] = (f"max_train_images={self.max_train_images}: {len(self._dataset('train'))} of {total} "
                                 f"training images (seed {self.seed}{', class-stratified' if self.num_classes else ''})")
        if self.random_flip:
            details["augment"] = "random_flip: training images mirrored with probability 1/2, fixed per (seed, epoch, image)"
        names = self.class_names
        if names:
            details["class names"] = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        return details

    def sample_descriptions(self, count: int) -> list[str]:
        """``count`` training items, described by their label."""
        dataset = self._dataset("train")
        names = self.class_names
        out = []
        for i in range(min(count, len(dataset))):
            label = int(dataset.labels[i])
            name = f" ({names[label]})" if 0 <= label < len(names) else ""
            out.append(f"train[{i}] label {label}{name}")
        return out

    def decode_all(self) -> None:
        """Decodes every item of every split (in-memory datasets are decoded already)."""

    def _check_split(self, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Catches a reader returning the wrong layout before it turns into a shape error later."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != self.channels:
            raise InvalidValue(
                f"{type(self).__name__}.read_split({split!r}) must return uint8 images (N,{self.channels},h,w), "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise InvalidValue(
                f"{type(self).__name__}.read_split({split!r}) must return int64 labels ({len(images)},), "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )

    def _loader(
        self, dataset: Dataset, sampler: Optional[ResumableSampler] = None, drop_last: bool = False
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=drop_last,
            num_workers=self.num_workers,
            collate_fn=identity_collate,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )
