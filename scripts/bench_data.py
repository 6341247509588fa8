"""Data pipeline throughput against the rate at which the training step consumes images.

1. **Folder loader:** ``ImageFolderDataModule`` over a folder of JPEGs written for the benchmark at
   CelebA's aligned size (178 x 218, quality 95), decoded, centre-cropped and resized to
   ``--image-size`` by ``--workers`` DataLoader workers: images/s over ``--batches`` batches after
   the first (which includes starting the workers).
2. **In-memory loader:** the CIFAR-10-shaped in-memory path (uint8 tensors, batches gathered by
   ``index_select``), on the host and with ``on_device``.
3. **Consumption:** DCGAN (Radford et al. 2016, the paper's 64-px networks) trained by
   ``Trainer.fit`` on an in-memory dataset with ``on_device`` (so loading costs nothing), images/s
   = iterations/s x batch.

Prints the ratio loader / consumption for each loader; the goal for the folder loader with 2
workers at 64 px is >= 5 (the loader never starves the step). On a CPU-only machine the step
runs on the same cores as the workers (each side is measured alone); on a GPU the step is the
GPU's and the ratio says whether 2 workers are enough for it.

    python scripts/bench_data.py [--workers 2] [--image-size 64] [--batch-size 64] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image

from datamodules import ImageFolderDataModule
from datamodules.base import ImageDataModule
from genmodels import DCGAN
from genmodels.callbacks import StopAtIteration

WARMUP = 3


def write_folder(root: Path, count: int, size: tuple[int, int] = (178, 218)) -> Path:
    """``count`` JPEGs of smooth random colour fields (JPEG cost is content-dependent; noise is the worst case)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        low = rng.integers(0, 256, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(low).resize(size, Image.BILINEAR).save(root / f"{i:06d}.jpg", quality=95)
    return root


class RandomImages(ImageDataModule):
    """An in-memory dataset of random uint8 images (the CIFAR-10 path without the files)."""

    dataset_name = "random images"
    _channels = 3

    def __init__(self, count: int = 1024, image_size: int = 64, batch_size: int = 64, on_device: bool = False) -> None:
        super().__init__(batch_size=batch_size, image_size=image_size, on_device=on_device)
        self.count = count

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (self.count, 3, self.image_size, self.image_size), dtype=torch.uint8, generator=generator)
        return images, torch.zeros(self.count, dtype=torch.long)


def _attach(datamodule: ImageDataModule, device: torch.device) -> None:
    """The two trainer attributes the loaders read, without a Trainer."""
    from types import SimpleNamespace

    datamodule.trainer = SimpleNamespace(training=True, world_size=1, global_rank=0,
                                         strategy=SimpleNamespace(root_device=device))


def loader_rate(datamodule: ImageDataModule, batches: int, device: torch.device) -> float:
    """Images/s delivered on ``device`` (the host-to-device copy included), after one warm-up batch."""
    _attach(datamodule, device)
    datamodule.setup("fit")
    iterator = iter(datamodule.train_dataloader())
    count, start = 0, 0.0
    for i in range(batches + 1):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(datamodule.train_dataloader())
            batch = next(iterator)
        image = batch["image"].to(device, non_blocking=True)
        if i == 0:
            _sync(device)
            start = time.perf_counter()
        else:
            count += len(image)
    _sync(device)
    return count / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Timer(pl.Callback):
    def __init__(self) -> None:
        self.start, self.elapsed, self.iterations = 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration == WARMUP:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        _sync(pl_module.device)
        self.elapsed = time.perf_counter() - self.start
        self.iterations = pl_module.iteration - WARMUP


def consumption_rate(image_size: int, batch_size: int, iterations: int, device: torch.device, precision: str) -> float:
    """Images/s the DCGAN training step consumes when data costs nothing."""
    torch.manual_seed(0)
    model = DCGAN(image_shape=(3, image_size, image_size))
    timer = _Timer()
    trainer = pl.Trainer(
        accelerator=device.type, devices=1, precision=precision, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=[timer, StopAtIteration(iterations + WARMUP)],
    )
    trainer.fit(model, RandomImages(count=4 * batch_size, image_size=image_size, batch_size=batch_size, on_device=True))
    return timer.iterations * batch_size / timer.elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024, help="JPEGs in the benchmark folder")
    parser.add_argument("--batches", type=int, default=30, help="loader batches timed")
    parser.add_argument("--iterations", type=int, default=20, help="training iterations timed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    pin = device.type == "cuda"

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "images", args.images)
        rates = {
            f"folder JPEG 178x218 -> {args.image_size} px, {args.workers} workers": loader_rate(
                ImageFolderDataModule(str(folder), batch_size=args.batch_size, num_workers=args.workers,
                                      image_size=args.image_size, pin_memory=pin, val_fraction=0.0),
                args.batches, device),
            f"folder JPEG 178x218 -> {args.image_size} px, 0 workers": loader_rate(
                ImageFolderDataModule(str(folder), batch_size=args.batch_size, num_workers=0,
                                      image_size=args.image_size, val_fraction=0.0),
                max(5, args.batches // 3), device),
            "in memory (uint8), host": loader_rate(
                RandomImages(8 * args.batch_size, args.image_size, args.batch_size), args.batches, device),
            "in memory (uint8), on_device": loader_rate(
                RandomImages(8 * args.batch_size, args.image_size, args.batch_size, on_device=True), args.batches, device),
        }
    consumed = consumption_rate(args.image_size, args.batch_size, args.iterations, device, args.precision)

    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}, {args.image_size} px")
    print(f"training step consumes (DCGAN {args.image_size} px, {args.precision}): {consumed:10.1f} images/s")
    print(f"{'loader':<48} {'images/s':>10} {'ratio loader/step':>18}")
    for name, rate in rates.items():
        print(f"{name:<48} {rate:>10.1f} {rate / consumed:>18.2f}")


if __name__ == "__main__":
    main()
