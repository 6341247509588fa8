"""DCGAN training speed under each performance option, against the default path in the same run.

The networks of the paper (Radford et al. 2016; feature_maps 64) at CIFAR-10's shape (3 x 32 x 32,
batch 64 by default) train through ``Trainer.fit`` on an in-memory dataset held ``on_device``, so
the figure is the training step's. Variants, alternated over the repeats so machine drift hits all
of them alike:

- ``fp32``: the default (``precision 32-true``);
- ``bf16-mixed`` and, on a GPU, ``16-mixed``: Lightning's autocast (penalties stay in fp32);
- ``compile``: ``torch.compile`` of G and D separately (the model's ``compile: true``);
- ``channels_last``: NHWC memory format for networks and batches;
- ``fused``: fused Adam (one kernel per parameter group; CUDA only in most PyTorch builds).

Prints iterations/s per variant (median) and the ratio to ``fp32``.

    python scripts/bench_options.py [--variants fp32,bf16,compile,channels_last,fused] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from genmodels import DCGAN
from genmodels.callbacks import StopAtIteration

if __package__ in (None, ""):  # run as a script: the sibling benchmark is importable by path
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import RandomImages, _sync  # noqa: E402

WARMUP = 5

# variant -> (model options, Trainer precision)
VARIANTS: dict[str, tuple[dict, str]] = {
    "fp32": ({}, "32-true"),
    "bf16": ({}, "bf16-mixed"),
    "fp16": ({}, "16-mixed"),
    "compile": ({"compile": True}, "32-true"),
    "channels_last": ({"channels_last": True}, "32-true"),
    "fused": ({"fused_optimizer": True}, "32-true"),
}


class _Timer(pl.Callback):
    # Warm-up excludes compilation and allocator growth; the first timed batch starts the clock.
    def __init__(self) -> None:
        self.start, self.rate = 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration == WARMUP:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        _sync(pl_module.device)
        self.rate = (pl_module.iteration - WARMUP) / (time.perf_counter() - self.start)


def run(variant: str, args: argparse.Namespace) -> float:
    options, precision = VARIANTS[variant]
    torch.manual_seed(0)
    model = DCGAN(image_shape=(3, args.image_size, args.image_size), feature_maps=args.feature_maps, **options)
    timer = _Timer()
    with tempfile.TemporaryDirectory():
        trainer = pl.Trainer(
            accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, precision=precision, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=-1,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer, StopAtIteration(args.iterations + WARMUP)],
        )
        data = RandomImages(count=16 * args.batch_size, image_size=args.image_size, batch_size=args.batch_size,
                            on_device=True)
        trainer.fit(model, data)
    return timer.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="fp32,bf16,compile,channels_last,fused")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--feature-maps", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if "fp32" not in variants:
        variants.insert(0, "fp32")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    failures: dict[str, str] = {}
    for _ in range(args.repeats):
        for variant in variants:
            if variant in failures:
                continue
            try:
                rates[variant].append(run(variant, args))
            except Exception as err:  # an option this device/build lacks (e.g. fused Adam on CPU)
                failures[variant] = f"{type(err).__name__}: {str(err).splitlines()[0][:100]}"
    base = statistics.median(rates["fp32"])
    print(f"DCGAN {args.image_size} px x 3, feature_maps {args.feature_maps}, batch {args.batch_size}, {args.device}, "
          f"{torch.get_num_threads()} threads, {args.iterations} it x {args.repeats} repeats")
    print(f"{'variant':<14} {'it/s':>8} {'ratio to fp32':>14}")
    for variant in variants:
        if variant in failures:
            print(f"{variant:<14} {'n/a':>8} {'':>14}   {failures[variant]}")
        else:
            rate = statistics.median(rates[variant])
            print(f"{variant:<14} {rate:>8.2f} {rate / base:>14.3f}")


if __name__ == "__main__":
    main()
