"""DDP on CPU (gloo) for DCGAN: throughput of 1 against 2 processes, and the cost of unused-parameter handling.

1. Training throughput (samples/s) of the real `genmodels` loop with 1 process and with 2
   processes under ``ddp_find_unused_parameters_true``, each in its own subprocess (Lightning's
   launcher re-executes this script), alternating over repeats; medians and scaling efficiency
   (2-process samples/s over twice the 1-process samples/s). Every process gets the same number of
   threads (``--threads``, default 1): a 2-thread process on a loaded 2-core machine waits at every
   parallel region for its descheduled thread, which once made 1 process look 8x slower than 2.
2. The price of ``find_unused_parameters=True`` itself: with 2 processes, D's forward + backward
   wrapped in DDP with and without it (all of D's parameters are used, so both are valid there);
   the difference is DDP's per-backward search of the autograd graph, which the GAN loop pays on
   every D and G backward.

    python scripts/bench_ddp.py [--iterations 60] [--repeats 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

WARMUP = 5


def worker(devices: int, iterations: int, batch_size: int, out: str) -> None:
    import pytorch_lightning as pl
    import torch

    from datamodules import DigitsDataModule
    from genmodels import DCGAN
    from genmodels.callbacks import StopAtIteration

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if pl_module.iteration == WARMUP:
                trainer.strategy.barrier()
                self.start = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            trainer.strategy.barrier()
            if trainer.is_global_zero:
                elapsed = time.perf_counter() - self.start
                samples = (pl_module.iteration - WARMUP) * batch_size * trainer.world_size
                with open(out, "w") as f:
                    json.dump({"samples_per_s": samples / elapsed}, f)

    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, 32, 32), latent_dim=64, feature_maps=16)
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_find_unused_parameters_true" if devices > 1 else "auto",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[Timer(), StopAtIteration(iterations + WARMUP)],
    )
    trainer.fit(model, DigitsDataModule(image_size=32, batch_size=batch_size))


def traversal_worker(rank: int, port: int, batch_size: int, steps: int, out: str, threads: int) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from genmodels.gans.dcgan import DCGANDiscriminator

    torch.set_num_threads(threads)

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    x = torch.randn(batch_size, 1, 32, 32)
    timings = {}
    for find_unused in (False, True, False, True):  # alternate; keep the last of each
        model = DistributedDataParallel(DCGANDiscriminator((1, 32, 32), 16), find_unused_parameters=find_unused)
        for i in range(steps + WARMUP):
            if i == WARMUP:
                dist.barrier()
                start = time.perf_counter()
            model(x).mean().backward()
        dist.barrier()
        timings[find_unused] = (time.perf_counter() - start) / steps
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"ms_without": 1000 * timings[False], "ms_with": 1000 * timings[True]}, f)
    dist.destroy_process_group()


def measure_traversal(args: argparse.Namespace, out: str) -> dict:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(traversal_worker, args=(port, args.batch_size, 3 * args.iterations, out, args.threads), nprocs=2)
    with open(out) as f:
        return json.load(f)


def measure(devices: int, args: argparse.Namespace, out: str) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--worker", str(devices), "--iterations", str(args.iterations),
           "--batch-size", str(args.batch_size), "--out", out]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with open(out) as f:
        return json.load(f)["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="per process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.worker:
        worker(args.worker, args.iterations, args.batch_size, args.out)
        return
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench_ddp_{os.getpid()}.json")
    results: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for devices in (1, 2):
            results[devices].append(measure(devices, args, out))
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"{'processes':<10} {'samples/s':>10}   (CPU gloo, DCGAN 32px, batch {args.batch_size}/process, "
          f"{args.threads} thread(s) per process, {os.cpu_count()} cores)")
    print(f"{1:<10} {one:>10.1f}")
    print(f"{2:<10} {two:>10.1f}   scaling efficiency {two / (2 * one):.2f} (ddp_find_unused_parameters_true)")
    t = measure_traversal(args, out)
    print(f"DDP(D) forward+backward, 2 processes: {t['ms_without']:.2f} ms without, {t['ms_with']:.2f} ms with "
          f"find_unused_parameters (x{t['ms_with'] / t['ms_without']:.3f})")


if __name__ == "__main__":
    main()
