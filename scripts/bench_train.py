"""Framework overhead: genmodels (Lightning) against a minimal hand-written PyTorch loop.

For each model the same networks (same initial weights), the same data (the embedded digits at
32 px, batch 64) and the same algorithm (losses, n_critic, penalty) are trained for the same
number of iterations by ``Trainer.fit`` and by a plain loop, alternating the two sides over
several repeats in one invocation. Prints iterations/s per side and ``ratio = genmodels / plain``
(median over repeats). ``--lightning`` adds a third side, the plain loop's step inside a bare
manual-optimization LightningModule on the same Trainer and datamodule, and ``genmodels /
lightning``: what genmodels' own code costs on top of Lightning's loop.

    python scripts/bench_train.py [--models gan,dcgan,dcgan_diffaugment,wgangp] [--iterations 300] [--repeats 5] [--device cpu] [--clock wall] [--lightning]

``--clock cpu`` times the process's CPU time instead of the wall clock: on a machine shared with
other jobs, waiting for a core then counts on neither side (run it with one thread,
``OMP_NUM_THREADS=1``, so a spinning worker thread does not count either).

The Lightning side runs as users run it from the CLI: a CSV logger writing every 50 iterations,
checkpointing disabled (saving costs the same on both sides), no progress bar.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from datamodules import DigitsDataModule
from genmodels import DCGAN, GAN, WGANGP
from genmodels.callbacks import StopAtIteration
from genmodels.gans.losses import LOSSES, gradient_penalty

WARMUP = 10
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def build(name: str, image_size: int):
    shape = (1, image_size, image_size)
    if name == "gan":
        # Small on purpose: per-step framework overhead shows most where the step itself is cheap.
        return GAN(image_shape=shape, latent_dim=64, generator_hidden=(256,), discriminator_hidden=(128,), maxout_pieces=2)
    if name == "dcgan":
        return DCGAN(image_shape=shape, latent_dim=64, feature_maps=16)
    if name == "dcgan_diffaugment":
        # DiffAugment (color,translation,cutout) on every D input; the plain loop applies the same ops.
        return DCGAN(image_shape=shape, latent_dim=64, feature_maps=16, augment="diffaugment")
    if name == "wgangp":
        return WGANGP(image_shape=shape, latent_dim=64, feature_maps=16, architecture="dcgan", discriminator_norm="layer")
    raise ValueError(f"unknown model {name!r}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Timer(pl.Callback):
    def __init__(self) -> None:
        self.start = 0.0
        self.count = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration == WARMUP:
            _sync(pl_module.device)
            self.start = clock()

    def on_train_end(self, trainer, pl_module):
        _sync(pl_module.device)
        self.count = pl_module.iteration - WARMUP
        self.elapsed = clock() - self.start


def run_genmodels(model, iterations: int, args) -> float:
    timer = _Timer()
    with tempfile.TemporaryDirectory() as logs:
        trainer = pl.Trainer(
            accelerator=args.device, devices=1, logger=CSVLogger(logs), log_every_n_steps=50,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=-1,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer, StopAtIteration(iterations + WARMUP)],
        )
        # On a GPU the plain loop keeps the images on the device; so does the datamodule (on_device).
        data = DigitsDataModule(image_size=args.image_size, batch_size=args.batch_size, on_device=args.device != "cpu")
        trainer.fit(model, data)
    return timer.count / timer.elapsed


class _PlainStepModule(pl.LightningModule):
    """The plain loop's step inside a bare LightningModule: what Lightning's own loop costs, with no
    genmodels code in the step (manual optimization, the same Trainer and datamodule as genmodels')."""

    def __init__(self, model) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D, self.source = model.generator, model.discriminator, [model]
        self.iteration = 0

    def configure_optimizers(self):
        model = self.source[0]
        return (torch.optim.Adam(self.G.parameters(), lr=model.lr_g, betas=model.betas),
                torch.optim.Adam(self.D.parameters(), lr=model.lr_d, betas=model.betas))

    def on_after_batch_transfer(self, batch, dataloader_idx):
        return {**batch, "image": batch["image"].float() / 127.5 - 1}

    def training_step(self, batch, batch_idx) -> None:
        opt_g, opt_d = self.optimizers()
        _plain_step(self.source[0], self.G, self.D, opt_g, opt_d, batch["image"], self.iteration)
        self.iteration += 1


def run_lightning_floor(model, iterations: int, args) -> float:
    timer = _Timer()
    module = _PlainStepModule(model)
    with tempfile.TemporaryDirectory() as logs:
        trainer = pl.Trainer(
            accelerator=args.device, devices=1, logger=CSVLogger(logs), log_every_n_steps=50,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=-1,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer, StopAtIteration(iterations + WARMUP)],
        )
        trainer.fit(module, DigitsDataModule(image_size=args.image_size, batch_size=args.batch_size, on_device=args.device != "cpu"))
    return timer.count / timer.elapsed


def _plain_step(model, G, D, opt_g, opt_d, real, it: int) -> None:
    """One iteration of the algorithm as a user writes it: D's update, then G's every n_critic."""
    loss = LOSSES[model.loss_name]
    d_loss_fn, g_loss_fn = (loss.d, loss.g) if hasattr(loss, "d") else loss  # (d, g) pairs before the loss registry
    augment = model.augment_pipe if model.augment_pipe is not None else (lambda x: x)
    b = real.shape[0]
    update_g = (it + 1) % model.n_critic == 0
    with torch.set_grad_enabled(update_g):
        fake = G(torch.randn(b, model.latent_dim, device=real.device))
    loss_d = d_loss_fn(D(augment(real)), D(augment(fake.detach())))
    if model.penalty == "gp":
        loss_d = loss_d + model.penalty_weight * gradient_penalty(D, real, fake)[0]
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    if update_g:
        loss_g = g_loss_fn(D(augment(fake)))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()


def run_plain(model, iterations: int, args) -> float:
    """The loop a user would write by hand: same networks, losses and schedule of updates."""
    device = torch.device("cuda" if args.device == "gpu" else args.device)
    dm = DigitsDataModule(image_size=args.image_size, batch_size=args.batch_size)
    dm.setup("fit")
    images = dm._dataset("train").images.to(device)  # uint8, like the datamodule serves them
    G, D = model.generator.to(device).train(), model.discriminator.to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=model.lr_g, betas=model.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=model.lr_d, betas=model.betas)
    n, b = images.shape[0], args.batch_size
    order, pos = torch.randperm(n, device=device), 0
    for it in range(iterations + WARMUP):
        if it == WARMUP:
            _sync(device)
            start = clock()
        if pos + b > n:
            order, pos = torch.randperm(n, device=device), 0
        real = images[order[pos : pos + b]].float() / 127.5 - 1
        pos += b
        _plain_step(model, G, D, opt_g, opt_d, real, it)
    _sync(device)
    return iterations / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gan,dcgan,wgangp")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or gpu")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall time, or the process's CPU time")
    parser.add_argument("--lightning", action="store_true",
                        help="also time the plain step inside a bare Lightning module (Lightning's own per-step cost)")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    warnings.filterwarnings("ignore")
    print(f"{'model':<8} {'genmodels it/s':>15} {'plain it/s':>11} {'ratio':>7} {'lightning it/s':>15} {'ratio':>7}   "
          f"({args.device}, {torch.get_num_threads()} threads, {args.image_size}px, batch {args.batch_size}, "
          f"{args.iterations} it x {args.repeats} repeats, {args.clock} clock)")
    for name in args.models.split(","):
        torch.manual_seed(0)
        reference = build(name, args.image_size)
        ours, plain, floor, ratios, floor_ratios = [], [], [], [], []
        for _ in range(args.repeats):  # alternate so machine drift hits every side alike
            ours.append(run_genmodels(copy.deepcopy(reference), args.iterations, args))
            plain.append(run_plain(copy.deepcopy(reference), args.iterations, args))
            ratios.append(ours[-1] / plain[-1])
            if args.lightning:
                floor.append(run_lightning_floor(copy.deepcopy(reference), args.iterations, args))
                floor_ratios.append(ours[-1] / floor[-1])
        lightning = f"{statistics.median(floor):>15.1f} {statistics.median(floor_ratios):>7.3f}" if floor else f"{'-':>15} {'-':>7}"
        print(f"{name:<8} {statistics.median(ours):>15.1f} {statistics.median(plain):>11.1f} {statistics.median(ratios):>7.3f} {lightning}")


if __name__ == "__main__":
    main()
