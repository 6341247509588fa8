"""Cost of each discriminator penalty per training iteration, relative to no penalty.

Trains the same DCGAN-style model (layer-normalized critic, Wasserstein loss) on the embedded
digits with each penalty in turn, alternating the configurations over several repeats in one
invocation, and prints the median seconds per iteration and the ratio to the unpenalized run.

    python scripts/bench_penalties.py [--iterations 60] [--repeats 3] [--image-size 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch

from datamodules import DigitsDataModule
from genmodels import DCGAN
from genmodels.callbacks import StopAtIteration

CONFIGS = {
    "none": {},
    "gp (lambda 10)": {"penalty": "gp"},
    "r1 (gamma 10)": {"penalty": "r1"},
    "r2 (gamma 10)": {"penalty": "r2"},
    "r1, lazy every 16": {"penalty": "r1", "penalty_interval": 16},
}


class _Timer(pl.Callback):
    """Seconds per iteration, skipping the first ``warmup`` iterations."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.count = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration == self.warmup:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.count += 1

    def seconds_per_iteration(self, device) -> float:
        _sync(device)
        return (time.perf_counter() - self.start) / self.count


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run(options: dict, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, args.image_size, args.image_size), feature_maps=args.feature_maps, latent_dim=64,
                  loss="wasserstein", discriminator_norm="layer", n_critic=1, **options)
    timer = _Timer(warmup=5)
    trainer = pl.Trainer(
        accelerator=args.device, devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[timer, StopAtIteration(args.iterations + 5)],
    )
    trainer.fit(model, DigitsDataModule(image_size=args.image_size, batch_size=args.batch_size))
    return timer.seconds_per_iteration(model.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--feature-maps", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):  # alternate so drift in machine load hits every config alike
        for name, options in CONFIGS.items():
            times[name].append(run(options, args))
    base = statistics.median(times["none"])
    print(f"{'penalty':<20} {'ms/iteration':>13} {'ratio':>7}   ({args.device}, {args.image_size}px, batch {args.batch_size})")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<20} {1000 * median:>13.2f} {median / base:>7.2f}")


if __name__ == "__main__":
    main()
