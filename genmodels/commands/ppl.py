"""``genmodels ppl``: perceptual path length of a generator (StyleGAN Sec. 4.2, `genmodels.apps.style`).

Needs the VGG16 weights in the torch hub cache (nothing is downloaded). Example::

    genmodels ppl --ckpt last.ckpt --space w --sampling end --noise per_batch --out ppl.json
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
    c.add_num_samples(p, None, "path pairs sampled (default: the authors' count for the model: 100,000 for StyleGAN, 50,000 for StyleGAN2)")
    # Spelled here, not imported from genmodels.apps.style, so building the parser stays light.
    c.option(p, "--noise", choices=("per_batch", "const"), default="per_batch",
             help="per_batch: fresh noise per batch, the same for both images of a pair (the authors' PPL code, "
                  "StyleGAN and StyleGAN2); const: the model's fixed noise images (default per_batch)")
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
    from genmodels.apps.style import perceptual_path_length, ppl_num_samples

    num_samples = ppl_num_samples(model) if args.num_samples is None else args.num_samples
    c.check_memory(batch + 16 * num_samples, f"--batch-size {args.batch_size} (PPL pairs through VGG16)",
                   "lower --batch-size", args.max_memory_gb)
    values = perceptual_path_length(
        model, args.space, num_samples, args.epsilon, args.sampling, args.crop, args.batch_size, args.seed, noise=args.noise
    )
    print(json.dumps(values))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(values, indent=2) + "\n")
    return values
