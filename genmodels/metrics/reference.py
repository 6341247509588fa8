"""Real-image ("reference") statistics: computed once, shared across ranks, cached on disk.

Extracting features of 50,000 real images costs as much as scoring a model, so the statistics
(mean and covariance for FID; the features themselves for KID and precision/recall) are computed
once per dataset, split, resolution, extractor and number of images, and stored in
``$GENMODELS_CACHE`` (default ``~/.cache/genmodels/stats``). The cache key also holds the SHA-256
of the exact uint8 images used (of the content settings and file names for datasets decoded from
files), so a changed split (another ``val_fraction``, a re-downloaded dataset) or a changed resize
misses the cache instead of silently reusing stale numbers, and the extractor's hash, so
statistics of another Inception file or another classifier are never mixed.
Files are written to a temporary name and renamed (a killed job never leaves a half-written cache
entry) and read back with ``weights_only=True``.

Under DDP every rank extracts a contiguous shard of the images and the sums / features are
reduced by torchmetrics, so the statistics (and the order of the stored features) are the same as
in a single process.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from genmodels.metrics import functional as F
from genmodels.metrics.extractors import FeatureExtractor, PathLike
from genmodels.protocols import ImageSplits
from genmodels.errors import InvalidValue

__all__ = [
    "CACHE_ENV_VAR",
    "CACHE_VERSION",
    "ReferenceStatistics",
    "FeatureStatistics",
    "StatisticsCache",
    "default_cache_dir",
    "ReferenceImages",
    "reference_key",
    "compute_reference",
]

CACHE_ENV_VAR = "GENMODELS_CACHE"
#: Bump when the content or meaning of a cache entry changes (old entries then miss).
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$GENMODELS_CACHE``, else ``~/.cache/genmodels/stats``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genmodels" / "stats"


@dataclass
class ReferenceStatistics:
    """Statistics of ``n`` real images under one extractor.

    Attributes:
        n: number of images.
        mean: ``(d,)`` float64.
        cov: ``(d, d)`` float64, unbiased.
        features: ``(n, d)`` float32, kept only when KID or precision/recall need them.
        key: the cache key (dataset, split, resolution, extractor, ...), JSON-able.
    """

    n: int
    mean: Tensor
    cov: Tensor
    features: Optional[Tensor] = None
    key: dict[str, Any] = field(default_factory=dict)


class FeatureStatistics(Metric):
    """Running float64 moments (and optionally every feature) of a stream of features.

    Sums are all-reduced and features all-gathered across ranks in ``compute``.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, num_features: int, keep_features: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keep_features = keep_features
        self.add_state("total", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("outer", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("features", [], dist_reduce_fx="cat")

    def update(self, features: Tensor) -> None:
        total, outer = F.moment_sums(features)
        self.total, self.outer, self.n = self.total + total, self.outer + outer, self.n + len(features)
        if self.keep_features:
            self.features.append(features.detach().to(torch.float32))

    def compute(self) -> tuple[int, Tensor, Tensor, Optional[Tensor]]:
        """``(n, mean, cov, features or None)`` over all ranks."""
        n = int(self.n)
        mean, cov = F.mean_and_covariance(self.total, self.outer, n)
        return n, mean, cov, dim_zero_cat(self.features) if self.keep_features else None


# ---------------------------------------------------------------------------------------------
# What the reference is

#: Datamodule hyperparameters that change how data is loaded, not which pixels it holds.
_LOADING_HPARAMS = ("batch_size", "num_workers", "pin_memory", "seed", "download")


class ReferenceImages:
    """The first ``num_images`` (all when None) real images of a split, in a fixed order.

    The project's `datamodules.ImageDataModule` family is read through its split datasets directly
    (in-memory uint8 tensors, or files decoded batch by batch for folder datasets like CelebA):
    neither shuffled nor touching the training stream's resume position. Other datamodules are read
    once through ``<split>_dataloader()``.

    Args:
        datamodule: the datamodule.
        split: ``train``, ``val`` or ``test``.
        num_images: how many of the split's first images to use.
    """

    def __init__(self, datamodule: Any, split: str = "train", num_images: Optional[int] = None) -> None:
        if split not in ("train", "val", "test"):
            raise InvalidValue(f"reference split must be 'train', 'val' or 'test', got {split!r}")
        self.split = split
        self._datamodule = datamodule
        if isinstance(datamodule, ImageSplits):  # datamodules.ImageDataModule and its subclasses
            self.dataset_name = datamodule.dataset_name
            self._dataset = datamodule.split_dataset(split)
            # A split is held in memory (`images`, hashed whole) or decoded from files on access.
            stored = getattr(self._dataset, "images", None)
            self._tensor = stored if isinstance(stored, Tensor) else None
        else:
            self.dataset_name = type(datamodule).__name__
            loaders = {"train": lambda: datamodule.train_dataloader(), "val": lambda: datamodule.val_dataloader(),
                       "test": lambda: datamodule.test_dataloader()}
            loader = loaders[split]()
            self._dataset, self._tensor = None, _images_from_loader(loader, num_images)
        available = len(self._tensor) if self._tensor is not None else len(self._dataset)
        if num_images is not None and num_images > available:
            raise InvalidValue(f"{num_images} reference images requested but the {split} split has only {available}")
        self.num_images = available if num_images is None else num_images

    def __len__(self) -> int:
        return self.num_images

    def images(self, start: int, stop: int) -> Tensor:
        """uint8 images ``[start, stop)``, ``(n, C, H, W)`` on the CPU."""
        if self._tensor is not None:
            return self._tensor[start:stop]
        return self._dataset.__getitems__(list(range(start, stop)))["image"]

    def batches(self, batch_size: int, rank: int = 0, world_size: int = 1) -> Iterator[Tensor]:
        """This rank's contiguous shard, in batches (shards in rank order = the whole split in order)."""
        bounds = [len(self) * r // world_size for r in range(world_size + 1)]
        for start in range(bounds[rank], bounds[rank + 1], batch_size):
            yield self.images(start, min(start + batch_size, bounds[rank + 1]))

    def resolution(self) -> list[int]:
        """``[C, H, W]`` of the images."""
        return list(self.images(0, 1).shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 of the exact pixels of in-memory splits; else of the datamodule's content settings.

        For datasets decoded from files, hashing every pixel would cost a pass over the disk at each
        start; the settings that define the content (class, data_dir, image size, crop, ...), the
        number of images and their file names stand in for them. Files rewritten in place under the
        same names are not noticed: delete the cache entry then.
        """
        digest = hashlib.sha256()
        if self._tensor is not None:
            digest.update(self._tensor[: len(self)].contiguous().numpy().tobytes())
            return digest.hexdigest()
        hparams = {k: v for k, v in dict(self._datamodule.hparams).items() if k not in _LOADING_HPARAMS}
        settings = {"class": type(self._datamodule).__qualname__, "hparams": hparams, "split": self.split}
        settings["n"] = len(self)
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
        # Files decoded on access are named by their paths; a loader-only datamodule has none.
        for path in list(getattr(self._dataset, "paths", []))[: len(self)]:
            digest.update(os.path.basename(str(path)).encode() + b"\0")
        return digest.hexdigest()


def _images_from_loader(loader: Iterable[Any], limit: Optional[int]) -> Tensor:
    from genmodels.metrics.extractors import quantize

    chunks, count = [], 0
    # Every DataLoader iterator draws a seed from the global RNG; training must not see that.
    with torch.random.fork_rng(devices=[]):
        for batch in loader:
            image = batch["image"] if isinstance(batch, dict) else batch[0]
            chunks.append(quantize(image.cpu()))
            count += len(image)
            if limit is not None and count >= limit:
                break
    return torch.cat(chunks)


def reference_key(images: ReferenceImages, extractor: FeatureExtractor, with_features: bool) -> dict[str, Any]:
    """The JSON-able cache key of the statistics of ``images`` under ``extractor``."""
    return {
        "version": CACHE_VERSION,
        "dataset": images.dataset_name,
        "split": images.split,
        "resolution": images.resolution(),
        "num_images": len(images),
        "images_sha256": images.fingerprint(),
        "extractor": extractor.name,
        "extractor_sha256": extractor.sha256,
        "features": bool(with_features),
    }


# ---------------------------------------------------------------------------------------------
# Computing and caching


def compute_reference(
    extractor: FeatureExtractor,
    images: ReferenceImages,
    key: dict[str, Any],
    batch_size: int = 64,
    rank: int = 0,
    world_size: int = 1,
    progress: Optional[Callable[[int], None]] = None,
) -> ReferenceStatistics:
    """Extract features of ``images`` (this rank's contiguous shard) and reduce them over ranks.

    Call it on every rank of a distributed run (it synchronizes). ``progress(n)`` is called after
    each batch with the number of images it held.
    """
    device = next(extractor.parameters()).device
    accumulator = FeatureStatistics(extractor.num_features, keep_features=key["features"]).to(device)
    for batch in images.batches(batch_size, rank, world_size):
        accumulator.update(extractor(batch.to(device)).features)
        if progress is not None:
            progress(len(batch))
    n, mean, cov, features = accumulator.compute()
    return ReferenceStatistics(n, mean, cov, features, dict(key))


class StatisticsCache:
    """Reference statistics on disk, one file per key.

    Args:
        directory: the cache folder; ``None`` means `default_cache_dir`.
    """

    def __init__(self, directory: Optional[PathLike] = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def path(self, key: dict[str, Any]) -> Path:
        """``<dataset>-<split>-<H>px-<extractor>-<hash8>-n<N>[-features]-<digest>.pt``."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        kind = "-features" if key["features"] else ""
        name = (
            f"{key['dataset']}-{key['split']}-{key['resolution'][-1]}px-{key['extractor']}-"
            f"{key['extractor_sha256'][:8]}-n{key['num_images']}{kind}-{digest}.pt"
        )
        return self.directory / name

    def load(self, key: dict[str, Any], need_features: bool = False) -> Optional[ReferenceStatistics]:
        """Cached statistics for ``key`` (a features entry also serves a moments-only request), or None."""
        candidates = [dict(key, features=True)]
        if not need_features:
            candidates.insert(0, dict(key, features=False))
        for candidate in candidates:
            stats = self._read(self.path(candidate), candidate)
            if stats is not None:
                return stats
        return None

    def _read(self, path: Path, key: dict[str, Any]) -> Optional[ReferenceStatistics]:
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload["key"] != key:
                raise InvalidValue("the stored key differs from its file name")
            return ReferenceStatistics(int(payload["n"]), payload["mean"], payload["cov"], payload.get("features"), key)
        except Exception as err:  # corrupt or foreign file: recompute rather than fail the run
            warnings.warn(f"ignoring unreadable reference statistics {path} ({err}); recomputing them", UserWarning)
            return None

    def save(self, stats: ReferenceStatistics) -> Path:
        """Write ``stats`` atomically (temporary file in the same folder, then rename)."""
        path = self.path(stats.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"key": stats.key, "n": stats.n, "mean": stats.mean.cpu(), "cov": stats.cov.cpu()}
        if stats.features is not None:
            payload["features"] = stats.features.cpu()
        from genmodels.atomic import atomic_write

        return atomic_write(path, lambda f: torch.save(payload, f))
