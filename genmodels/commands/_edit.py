"""Options and setup shared by ``genmodels control`` and ``genmodels bias`` (latent edits along a classifier)."""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.commands import common as c


def add_edit_arguments(p: argparse.ArgumentParser) -> None:
    c.add_ckpt(p, "generator checkpoint of a model with a latent z (training checkpoint or `genmodels export` file)")
    c.option(p, "--classifier", required=True, metavar="PATH",
             help="class classifier (genmodels train-classifier) or attribute classifier (genmodels train-attributes)")
    c.option(p, "--classifier-sha256", default=None, metavar="HEX", help="pin the classifier file to this SHA-256 (prefix)")
    c.option(p, "--steps", type=c.positive_int, default=8, help="gradient steps (default 8)")
    c.option(p, "--step-size", type=c.positive_float, default=0.5, help="distance z moves in the first step (default 0.5)")
    c.option(p, "--penalty", type=c.nonnegative_float, default=0.0, help="weight of the change of the other scores (default 0)")
    c.add_num_samples(p, 8, "latents edited")
    c.option(p, "--condition", default=None, help="conditional models: class index, or name=value,... for attributes")
    c.add_seed(p)
    c.add_device(p)
    c.add_max_memory(p)


def load_edit_setup(args: argparse.Namespace, edits: int = 1) -> tuple[Any, Any, Any, Any]:
    """(model, scorer, decoder, starting latents); checks the classifier fits and prices the edit path."""
    import torch

    from genmodels.apps.controllable import draw_latents, latent_decoder, model_condition
    from genmodels.apps.scores import load_scorer

    model = c.load_checkpoint_model(args.ckpt, args.device)
    try:
        latent_decoder(model)  # refuses models without a latent code before anything is allocated
    except ValueError as err:
        raise c.UserError(f"{args.ckpt}: {err}; pass a checkpoint of a GAN, cGAN or VAE") from None
    # Every step of every edited latent is kept (the grid), with its gradient and the Jacobian.
    images = args.num_samples * (args.steps + 1) * edits
    c.check_memory(c.image_bytes(model.image_shape, images, 12),
                   f"--num-samples {args.num_samples} x --steps {args.steps} ({images} images of {c.shape_text(model.image_shape)})",
                   "lower --num-samples or --steps", args.max_memory_gb)
    scorer = load_scorer(args.classifier, args.classifier_sha256, map_location=args.device)
    scorer.check_fits(model.image_shape, f"the generator of {args.ckpt}")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    condition = model_condition(model, args.condition, args.num_samples, generator)
    decode = latent_decoder(model, condition)
    return model, scorer, decode, draw_latents(model, args.num_samples, generator)
