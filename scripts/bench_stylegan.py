"""Training speed of StyleGAN / StyleGAN2 in seconds per thousand real images (sec/kimg).

Times full training iterations (one D step with its lazy R1, one G step with its lazy path-length
regularizer, the G EMA update) through the real Lightning loop on synthetic images, so data
loading is not measured; the first ``--warmup`` iterations (allocator, cuDNN autotuning) are
skipped. Prints a table with the official StyleGAN2-ADA (PyTorch) figures for one V100 at the same
resolution, from its README's "Expected training time" table (default ``auto`` config, batch
chosen per resolution, fp16 in the top layers, custom CUDA kernels), and the ratio ours / official.
Those figures are for a different GPU and batch: the ratio is an order-of-magnitude check, not a
like-for-like comparison.

    python scripts/bench_stylegan.py --resolution 256 --batch 32 --device cuda --precision 16-mixed
    python scripts/bench_stylegan.py --resolution 16 --batch 8 --channel-base 64 --channel-max 16 --iterations 6  # CPU smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Optional

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from genmodels import StyleGAN, StyleGAN2
from genmodels.callbacks import StopAtIteration

#: sec/kimg on one V100 (stylegan2-ada-pytorch README, "Expected training time"): (low, high).
OFFICIAL_V100_SEC_PER_KIMG = {128: (12.8, 13.7), 256: (21.6, 24.2), 512: (72.5, 74.9), 1024: (154.3, 161.6)}


class _RandomImages(Dataset):
    def __init__(self, n: int, shape: tuple[int, int, int]) -> None:
        self.images = torch.rand((n, *shape), generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i]}


class _Timer(pl.Callback):
    """Wall time of the iterations after ``warmup`` (synchronized on CUDA)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.count = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration == self.warmup:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.count += 1

    def seconds_per_iteration(self, device: torch.device) -> float:
        _sync(device)
        return (time.perf_counter() - self.start) / self.count


def _sync(device: torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def build(args: argparse.Namespace) -> StyleGAN:
    cls = StyleGAN2 if args.architecture == "stylegan2" else StyleGAN
    options = dict(image_shape=(3, args.resolution, args.resolution), channel_max=args.channel_max)
    if args.channel_base is not None:
        options["channel_base"] = args.channel_base
    if args.architecture == "stylegan":
        options["growing"] = False  # time the full-resolution networks, as for StyleGAN2
    return cls(**options)


def measure(args: argparse.Namespace) -> float:
    """Seconds per training iteration."""
    torch.manual_seed(0)
    model = build(args)
    iterations = args.warmup + args.iterations
    data = DataLoader(_RandomImages(args.batch * 2, (3, args.resolution, args.resolution)), batch_size=args.batch, shuffle=False, drop_last=True)
    timer = _Timer(args.warmup)
    trainer = pl.Trainer(
        accelerator=args.device, devices=1, precision=args.precision, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=[timer, StopAtIteration(iterations)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, data)
    return timer.seconds_per_iteration(model.device)


def official(resolution: int) -> Optional[tuple[float, float]]:
    return OFFICIAL_V100_SEC_PER_KIMG.get(resolution)


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architecture", choices=("stylegan", "stylegan2"), default="stylegan2")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--precision", default="32-true", help="Lightning precision: 32-true, 16-mixed, bf16-mixed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--channel-base", type=int, default=None, help="default: the paper's (32768 StyleGAN2, 16384 StyleGAN)")
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--iterations", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first (>= 1)")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.iterations < 1:
        p.error("--warmup and --iterations must be >= 1")

    seconds = measure(args)
    sec_per_kimg = seconds / args.batch * 1000
    print(f"{args.architecture} {args.resolution}x{args.resolution}, batch {args.batch}, {args.precision}, {args.device}, "
          f"channel_base {args.channel_base or 'paper'}, channel_max {args.channel_max}")
    print(f"{'':<28}{'sec/iter':>10}{'sec/kimg':>12}")
    print(f"{'genmodels (this run)':<28}{seconds:>10.3f}{sec_per_kimg:>12.1f}")
    reference = official(args.resolution)
    result = {"sec_per_iteration": seconds, "sec_per_kimg": sec_per_kimg}
    if reference is not None:
        low, high = reference
        print(f"{'official SG2-ADA, 1 V100':<28}{'':>10}{f'{low}-{high}':>12}")
        print(f"ratio ours / official: {sec_per_kimg / high:.2f}-{sec_per_kimg / low:.2f} (different GPU and batch: order of magnitude only)")
        result["official_v100_sec_per_kimg"] = reference
    else:
        print(f"no official figure at {args.resolution}x{args.resolution} (published: {sorted(OFFICIAL_V100_SEC_PER_KIMG)})")
    return result


if __name__ == "__main__":
    main()
