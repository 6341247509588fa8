"""StyleGAN2 training speed beside the authors' code: sec/kimg of stylegan2-ada-pytorch and of genmodels, in one run.

Both train the same networks (StyleGAN2 config F shapes at a small resolution: z = w = 512, 8 mapping
layers, channels min(channel_base / r, channel_max)) with the same schedule: a D step and a G step
per iteration, lazy R1 every 16 and path length (weight 2, batch / 2) every 4 as their own steps,
style mixing 0.9, the G EMA update. The authors' side is their ``training/loss.py`` StyleGAN2Loss
driven by training_loop.py's phase loop (Gmain, Greg, Dmain, Dreg; reproduced here, their classes
and loss imported from the checkout, their custom ops on their reference implementations when not
compiled); genmodels' side is `genmodels.StyleGAN2` through the Lightning loop
(scripts/bench_stylegan.py). Data loading is not measured; the first ``--warmup`` iterations
of each are skipped, then ``--iterations`` are timed.

    python scripts/bench_official.py --checkout /tmp/stylegan2-ada-pytorch --resolution 32 --batch 16 \
        --channel-base 4096 --channel-max 128 --iterations 16 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_stylegan  # noqa: E402  (the genmodels side)


def official_seconds_per_iteration(args: argparse.Namespace) -> float:
    """training_loop.py's phases on the authors' networks, timed like bench_stylegan's genmodels loop."""
    sys.path.insert(0, str(args.checkout.resolve()))
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    device = torch.device(args.device)
    torch.manual_seed(0)
    common = dict(c_dim=0, img_resolution=args.resolution, img_channels=3)
    base = args.channel_base or 32768
    G = Generator(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=8),
                  synthesis_kwargs=dict(channel_base=base, channel_max=args.channel_max, num_fp16_res=0, conv_clamp=None), **common)
    D = Discriminator(channel_base=base, channel_max=args.channel_max, num_fp16_res=0, conv_clamp=None, **common)
    G, D = G.train().requires_grad_(False).to(device), D.train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(device, G.mapping, G.synthesis, D, style_mixing_prob=0.9, r1_gamma=10, pl_weight=2)
    phases = []
    for name, module, interval in (("G", G, 4), ("D", D, 16)):
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=0.002 * ratio, betas=[0.0**ratio, 0.99**ratio], eps=1e-8)
        phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
    real = torch.rand(args.batch, 3, args.resolution, args.resolution, device=device) * 2 - 1
    c = torch.zeros(args.batch, 0, device=device)
    start = None
    for iteration in range(args.warmup + args.iterations):
        if iteration == args.warmup:
            _sync(device)
            start = time.perf_counter()
        for name, module, opt, interval in phases:
            if iteration % interval != 0:
                continue
            z = torch.randn(args.batch, 512, device=device)
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        with torch.no_grad():  # G_ema, 10 kimg half-life
            beta = 0.5 ** (args.batch / 10_000)
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
    _sync(device)
    return (time.perf_counter() - start) / args.iterations


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", type=Path, required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--channel-base", type=int, default=4096)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--iterations", type=int, default=16, help="timed iterations (a multiple of 16 times every regularizer fairly)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    if not (args.checkout / "training" / "loss.py").is_file():
        p.error(f"--checkout {args.checkout} is not a stylegan2-ada-pytorch checkout (no training/loss.py)")
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = official_seconds_per_iteration(args)
        ours = bench_stylegan.measure(argparse.Namespace(
            architecture="stylegan2", resolution=args.resolution, batch=args.batch, precision="32-true", device=args.device,
            channel_base=args.channel_base, channel_max=args.channel_max, iterations=args.iterations, warmup=args.warmup))
    print(f"StyleGAN2 {args.resolution}x{args.resolution}, batch {args.batch}, channel_base {args.channel_base}, "
          f"channel_max {args.channel_max}, fp32, {args.device}, {args.iterations} timed iterations after {args.warmup}")
    print(f"{'':<34}{'sec/iter':>10}{'sec/kimg':>12}")
    print(f"{'stylegan2-ada-pytorch (official)':<34}{official:>10.3f}{official / args.batch * 1000:>12.1f}")
    print(f"{'genmodels StyleGAN2':<34}{ours:>10.3f}{ours / args.batch * 1000:>12.1f}")
    print(f"ratio genmodels / official: {ours / official:.2f}")
    return {"official_sec_per_iteration": official, "genmodels_sec_per_iteration": ours}


if __name__ == "__main__":
    main()
