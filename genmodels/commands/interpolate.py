"""``genmodels interpolate``: walk from seed A's latent codes to seed B's (spherical in Z, linear in W).

Example::

    genmodels interpolate --ckpt last.ckpt --steps 16 --seeds 0 1 --num-samples 8 --out interp.gif
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.atomic import atomic_write
from genmodels.commands import common as c

NAME = "interpolate"
HELP = "latent interpolation between two seeds, as an animated GIF or a PNG strip"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Walk from seed A's latent codes to seed B's "
                              "(spherical in Z, linear in W).")
    c.add_generation_options(p)
    c.option(p, "--steps", type=c.positive_int, default=16, help="frames, both ends included (>= 2, default 16)")
    c.option(p, "--seeds", type=c.seed, nargs=2, default=(0, 1), metavar=("A", "B"), help="start and end seeds (default 0 1)")
    c.add_num_samples(p, 1, "paths walked side by side (code k of A to code k of B)", aliases=("--n",))
    c.option(p, "--nrow", type=c.positive_int, default=None, help="GIF: paths per grid row (default: a square)")
    c.option(p, "--frame-ms", type=c.int_in(10, 655_350), default=100,
             help="GIF: milliseconds per frame, 10 to 655350 (GIF stores 1/100 s in 16 bits; default 100)")
    c.add_out(p, "interp.gif (animated grids) or interp.png (one row per path)")
    c.option(p, "--space", choices=("z", "w"), default=None,
             help="style-based models: walk in W (linear, default) or in Z (spherical, then mapped)")
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> Path:
    out = c.check_output(args.out, inputs=[args.ckpt], overwrite=args.overwrite, suffixes=(".gif", ".png"))
    if args.steps < 2:
        raise c.UserError(f"--steps must be >= 2 (both ends are frames), got {args.steps}")
    model = c.load_checkpoint_model(args.ckpt, args.device)
    frames = args.steps * args.num_samples
    c.check_memory(c.image_bytes(model.image_shape, frames, 8),
                   f"--steps {args.steps} x --num-samples {args.num_samples} ({frames} frames of {c.shape_text(model.image_shape)})",
                   "lower --steps or --num-samples", args.max_memory_gb)
    from genmodels.apps.generation import grid_png, interpolation_frames, save_gif

    seed_a, seed_b = args.seeds
    if args.space == "z":
        from genmodels.apps.style import z_interpolation_frames

        images = z_interpolation_frames(model, seed_a, seed_b, args.steps, args.num_samples, args.truncation)
    else:
        images = interpolation_frames(model, seed_a, seed_b, args.steps, args.num_samples,
                                      c.parse_condition(args.condition), args.truncation)
    if out.suffix.lower() == ".gif":
        save_gif(images, out, args.nrow, args.frame_ms)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write(grid_png(images.transpose(0, 1).reshape(-1, *images.shape[2:]), nrow=args.steps)))
    print(f"{args.steps} steps from seed {seed_a} to seed {seed_b} ({args.num_samples} paths) -> {out}")
    return out
