"""``genmodels ppl``: perceptual path length of a generator (StyleGAN Sec. 4.2, `genmodels.apps.style`).

Needs the VGG16 weights in the torch hub cache (nothing is downloaded). Example::

    genmodels ppl --ckpt last.ckpt --space w --sampling end --out ppl.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from genmodels.atomic import atomic_write_text
from genmodels.commands import common as c

NAME = "ppl"
HELP = "perceptual path length with the authors' protocol (LPIPS/VGG16 at 256 px, percentile filtering) in W or Z"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Perceptual path length (StyleGAN Sec. 4.2).")
    c.add_ckpt(p)
    c.option(p, "--space", choices=("w", "z"), default="w", help="latent space of the paths (default w)")
    c.option(p, "--sampling", choices=("end", "full"), default="end",
             help="t = 0 (end, the StyleGAN paper's tables) or t ~ U[0, 1) (full) (default end)")
    c.option(p, "--crop", action="store_true", help="the authors' face crop before LPIPS (FFHQ / CelebA-HQ faces)")
    c.add_num_samples(p, 50_000, "path pairs sampled (stylegan2-ada's protocol: 50,000; the TF StyleGAN's: 100,000)")
    c.option(p, "--epsilon", type=c.positive_float, default=1e-4, help="step along the path (default 1e-4)")
    c.add_batch_size(p, 64, "pairs per batch")
    c.add_seed(p)
    c.add_device(p)
    c.add_out(p, "write the values to this JSON file", required=False)
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> dict[str, float]:
    out = None if args.out is None else c.check_output(args.out, inputs=[args.ckpt], overwrite=args.overwrite, suffixes=(".json",))
    model = c.load_checkpoint_model(args.ckpt, args.device)
    # Two images per pair at once, upsampled to VGG's 224x224 with ~20 feature maps kept per image.
    batch = c.image_bytes((3, 224, 224), 2 * args.batch_size, 4 * 20) + c.image_bytes(model.image_shape, 2 * args.batch_size)
    c.check_memory(batch + 16 * args.num_samples, f"--batch-size {args.batch_size} (PPL pairs through VGG16)",
                   "lower --batch-size", args.max_memory_gb)
    from genmodels.apps.style import perceptual_path_length

    values = perceptual_path_length(
        model, args.space, args.num_samples, args.epsilon, args.sampling, args.crop, args.batch_size, args.seed
    )
    print(json.dumps(values))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(values, indent=2) + "\n")
    return values
