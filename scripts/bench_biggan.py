"""BigGAN training speed, genmodels beside ajbrock/BigGAN-PyTorch's own training function, one invocation.

    python scripts/bench_biggan.py --checkout /tmp/BigGAN-PyTorch [--device cpu] [--ch 16] [--batch 16]

Both train the same networks (launch_cifar_ema.sh's architecture at width 4 * ch: no hier, no
shared embedding, no attention; hinge, 4 D steps per G step, Adam 2e-4 (0, 0.999), EMA) on the same
in-memory random batches. The official side calls train_fns.GAN_training_function's ``train(x, y)``
(one iteration = 4 D steps + 1 G step) in a loop; genmodels runs `Trainer.fit` and is timed between
G steps by a callback, so start-up is excluded on both sides. Prints one Markdown table of G
iterations per second; without --checkout only the genmodels row is measured.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time
import types

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from genmodels import BigGAN  # noqa: E402
from genmodels.callbacks import StopAtIteration  # noqa: E402

N_CLASSES, D_STEPS = 10, 4


def official_rate(checkout: pathlib.Path, ch: int, batch: int, iterations: int, warmup: int, device: str) -> float:
    """G iterations per second of train_fns.GAN_training_function on the checkout's classes."""
    sys.path.insert(0, str(checkout))
    sys.modules.setdefault("h5py", types.ModuleType("h5py"))  # imported by datasets.py only
    import BigGAN as official  # noqa: N813
    import train_fns
    import utils

    flags = (f"--dataset C10 --G_ch {ch} --D_ch {ch} --batch_size {batch} --num_D_steps {D_STEPS} --G_lr 2e-4 "
             "--D_lr 2e-4 --G_ortho 0.0 --G_attn 0 --D_attn 0 --G_init N02 --D_init N02 --ema --ema_start 1000")
    config = vars(utils.prepare_parser().parse_args(shlex.split(flags)))
    config.update(resolution=32, n_classes=N_CLASSES, G_activation=torch.nn.ReLU(inplace=False),
                  D_activation=torch.nn.ReLU(inplace=False), skip_init=False, no_optim=False, shared_dim=config["dim_z"])
    G, D = official.Generator(**config).to(device), official.Discriminator(**config).to(device)
    G_ema = official.Generator(**{**config, "skip_init": True, "no_optim": True}).to(device)
    ema = utils.ema(G, G_ema, config["ema_decay"], config["ema_start"])
    z_, y_ = utils.prepare_z_y(batch, G.dim_z, N_CLASSES, device=device)
    train = train_fns.GAN_training_function(G, D, official.G_D(G, D), z_, y_, ema, {"itr": 1}, config)
    x = torch.rand(batch * D_STEPS, 3, 32, 32, device=device) * 2 - 1
    y = torch.randint(0, N_CLASSES, (batch * D_STEPS,), device=device)
    G.train(), D.train()
    for _ in range(warmup):
        train(x, y)
    _sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        train(x, y)
    _sync(device)
    return iterations / (time.perf_counter() - start)


class _GStepClock(pl.Callback):
    """perf_counter after every G step (every n_critic-th iteration)."""

    def __init__(self, device: str) -> None:
        self.device, self.times = device, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # noqa: ANN001
        if module.iteration % module.n_critic == 0:
            _sync(self.device)
            self.times.append(time.perf_counter())


def genmodels_rate(ch: int, batch: int, iterations: int, warmup: int, device: str) -> float:
    """G iterations per second of genmodels' BigGAN with the same networks and settings."""
    model = BigGAN(latent_dim=128, channels=4 * ch, hier=False, shared=False, attention_resolution=None,
                   orthogonal_reg=0.0, init="N02", ema_decay=0.9999, ema_start=1000)
    x = torch.rand(batch * D_STEPS, 3, 32, 32) * 2 - 1
    y = torch.randint(0, N_CLASSES, (batch * D_STEPS,))
    data = [{"image": x[i], "label": y[i]} for i in range(len(x))]
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False, drop_last=True)
    clock = _GStepClock(device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0,
        callbacks=[StopAtIteration(D_STEPS * (warmup + iterations)), clock],
    )
    trainer.fit(model, loader)
    times = clock.times[warmup - 1:]  # from the end of the last warm-up iteration
    return (len(times) - 1) / (times[-1] - times[0])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, help="a checkout of ajbrock/BigGAN-PyTorch (omit: genmodels only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ch", type=int, default=16, help="--G_ch/--D_ch (width 4 * ch; the CIFAR script uses 64)")
    parser.add_argument("--batch", type=int, default=16, help="--batch_size (the CIFAR script uses 50)")
    parser.add_argument("--iterations", type=int, default=10, help="timed G iterations (each: 4 D steps + 1 G step)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    rows = []
    if args.checkout is not None:
        torch.manual_seed(0)
        rows.append(("ajbrock/BigGAN-PyTorch train_fns", official_rate(args.checkout.resolve(), args.ch, args.batch, args.iterations, args.warmup, args.device)))
    torch.manual_seed(0)
    rows.append(("genmodels BigGAN (Trainer.fit)", genmodels_rate(args.ch, args.batch, args.iterations, args.warmup, args.device)))
    print(f"| code ({args.device}, ch {args.ch}, batch {args.batch}, {args.iterations} timed iterations) | G it/s | ratio to official |")
    print("|---|---|---|")
    base = rows[0][1] if args.checkout is not None else None
    for name, rate in rows:
        ratio = f"{rate / base:.2f}" if base else "n/a"
        print(f"| {name} | {rate:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
