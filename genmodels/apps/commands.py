"""The ``genmodels sample``, ``genmodels interpolate`` and ``genmodels export`` commands.

Examples::

    genmodels sample --ckpt runs/dcgan/digits/checkpoints/last.ckpt --n 64 --seed 0 --out grid.png
    genmodels sample --ckpt last.ckpt --n 1000 --out samples/            # one PNG per image
    genmodels sample --ckpt cgan.ckpt --n 100 --condition all --truncation 1.0 --out grid.png
    genmodels interpolate --ckpt last.ckpt --steps 16 --seeds 0 1 --n 8 --out interp.gif
    genmodels export --ckpt last.ckpt --out generator.pt                  # weights-only, shareable
    genmodels export --ckpt last.ckpt --format program --out generator.pt2

``--ckpt`` takes a training checkpoint or a ``genmodels export`` weights file; both are opened with
``weights_only=True`` (`genmodels.apps.export`). The same seed always writes the same PNG bytes.
``--truncation`` and ``--condition`` are described in `genmodels.apps.latent` and
`genmodels.apps.generation`. Bad values exit with status 2 and a message.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from genmodels.apps.export import export_program, export_weights, load_generative_model
from genmodels.apps.generation import Condition, generate, image_pngs, interpolation_frames, grid_png, save_gif
from genmodels.apps.latent import MAX_SEED

__all__ = ["sample_main", "interpolate_main", "export_main", "parse_condition", "default_device"]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def exit_on_value_error(prog: str) -> Callable[[Callable[[list[str]], Any]], Callable[[list[str]], Any]]:
    """Print a ValueError as ``<prog>: error: ...`` and exit with status 2, like argparse."""

    def decorate(function: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
        @functools.wraps(function)
        def wrapper(argv: list[str]) -> Any:
            try:
                return function(argv)
            except ValueError as err:
                print(f"{prog}: error: {err}", file=sys.stderr)
                raise SystemExit(2) from None

        return wrapper

    return decorate


def parse_condition(values: Optional[list[str]]) -> Condition:
    """``--condition`` words -> None, ``"all"``, one int or a list of ints."""
    if not values:
        return None
    if values == ["all"]:
        return "all"
    try:
        labels = [int(v) for v in values]
    except ValueError:
        raise ValueError(f"--condition takes class labels (integers) or 'all', got {' '.join(values)!r}") from None
    return labels[0] if len(labels) == 1 else labels


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in [0, {MAX_SEED}], got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="training checkpoint or `genmodels export` weights file")
    parser.add_argument("--truncation", type=_positive_float, default=None, metavar="PSI",
                        help="truncation: Z models resample |z| > PSI; W models move w toward the mean by PSI")
    parser.add_argument("--condition", nargs="+", default=None, metavar="LABEL",
                        help="class label(s), cycled over the images, or 'all' (conditional models)")
    parser.add_argument("--device", default=default_device())


# ---------------------------------------------------------------------------------------------
# sample


def _sample_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels sample", description="Draw images from a checkpoint.")
    _common_arguments(p)
    p.add_argument("--n", type=_positive, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=_seed, default=0, help="seed: the same seed writes the same images")
    p.add_argument("--nrow", type=_positive, default=None, help="images per grid row (default: a square)")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--out", required=True, help="grid.png (one grid) or a directory (one PNG per image)")
    p.add_argument("--text", nargs="+", default=None, metavar="CAPTION",
                   help="text-to-image models: caption(s), each in quotes; --n images per caption, one grid row each")
    return p


def write_samples(images: torch.Tensor, out: Path, nrow: Optional[int] = None) -> list[Path]:
    """A grid when ``out`` ends in .png, else one ``NNNNNN.png`` per image in the directory ``out``."""
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(grid_png(images, nrow=nrow))
        return [out]
    if out.suffix:
        raise ValueError(f"--out must be a .png file or a directory, got {out}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(image_pngs(images)):
        path = out / f"{index:06d}.png"
        path.write_bytes(data)
        paths.append(path)
    return paths


@exit_on_value_error("genmodels sample")
def sample_main(argv: list[str]) -> list[Path]:
    """``genmodels sample --ckpt PATH [--n 64] [--seed S] [--truncation PSI] [--condition ...] --out grid.png|DIR``."""
    args = _sample_parser().parse_args(argv)
    model = load_generative_model(args.ckpt, args.device)
    if args.text is not None:
        return _sample_text(model, args)
    images = generate(model, args.n, args.seed, parse_condition(args.condition), args.truncation, args.batch_size)
    paths = write_samples(images, Path(args.out), args.nrow)
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {args.out}"
    print(f"{args.n} images of {type(model).__name__} (iteration {model.iteration}, seed {args.seed}) -> {where}")
    return paths


def _sample_text(model: Any, args: argparse.Namespace) -> list[Path]:
    """``--text``: a grid with one captioned row per caption, or one PNG per image plus captions.txt."""
    from genmodels.apps.generation import generate_from_text
    from genmodels.callbacks.caption_grid import captioned_grid

    images = generate_from_text(model, args.text, args.n, args.seed, args.batch_size)
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        captioned_grid(images, args.text, args.n).save(out)
        paths = [out]
    else:
        paths = write_samples(images, out)
        (out / "captions.txt").write_text("".join(f"{p.name}\t{t}\n" for p, t in zip(paths, [t for t in args.text for _ in range(args.n)])))
    print(f"{len(images)} images of {type(model).__name__} for {len(args.text)} caption(s) (seed {args.seed}) -> {out}")
    return paths


# ---------------------------------------------------------------------------------------------
# interpolate


def _interpolate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genmodels interpolate",
        description="Walk from seed A's latent codes to seed B's (spherical in Z, linear in W).",
    )
    _common_arguments(p)
    p.add_argument("--steps", type=_positive, default=16, help="frames, both ends included (default 16)")
    p.add_argument("--seeds", type=_seed, nargs=2, default=(0, 1), metavar=("A", "B"), help="start and end seeds (default 0 1)")
    p.add_argument("--n", type=_positive, default=1, help="paths walked side by side (code k of A to code k of B)")
    p.add_argument("--nrow", type=_positive, default=None, help="GIF: paths per grid row")
    p.add_argument("--frame-ms", type=_positive, default=100, help="GIF: milliseconds per frame")
    p.add_argument("--out", required=True, help="interp.gif (animated grids) or interp.png (one row per path)")
    p.add_argument("--space", choices=("z", "w"), default=None,
                   help="style-based models: walk in W (linear, default) or in Z (spherical, then mapped)")
    return p


@exit_on_value_error("genmodels interpolate")
def interpolate_main(argv: list[str]) -> Path:
    """``genmodels interpolate --ckpt PATH [--steps 16] [--seeds A B] [--n 1] --out interp.gif|.png``."""
    args = _interpolate_parser().parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() not in (".gif", ".png"):
        raise ValueError(f"--out must end in .gif or .png, got {out}")
    if args.steps < 2:
        raise ValueError(f"--steps must be >= 2, got {args.steps}")
    model = load_generative_model(args.ckpt, args.device)
    seed_a, seed_b = args.seeds
    if args.space == "z":
        from genmodels.apps.style import z_interpolation_frames

        frames = z_interpolation_frames(model, seed_a, seed_b, args.steps, args.n, args.truncation)
    else:
        frames = interpolation_frames(model, seed_a, seed_b, args.steps, args.n, parse_condition(args.condition), args.truncation)
    if out.suffix.lower() == ".gif":
        save_gif(frames, out, args.nrow, args.frame_ms)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(grid_png(frames.transpose(0, 1).reshape(-1, *frames.shape[2:]), nrow=args.steps))
    print(f"{args.steps} steps from seed {seed_a} to seed {seed_b} ({args.n} paths) -> {out}")
    return out


# ---------------------------------------------------------------------------------------------
# export


def _export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels export", description="Export a checkpoint's generator for inference.")
    p.add_argument("--ckpt", required=True, help="training checkpoint (or an exported weights file)")
    p.add_argument("--out", required=True, help="output file (generator.pt for weights, generator.pt2 for program)")
    p.add_argument("--format", choices=("weights", "program"), default="weights",
                   help="weights: weights-only file for genmodels (default); program: torch.export program z -> images")
    p.add_argument("--device", default="cpu", help="device the export is made on (default cpu)")
    return p


@exit_on_value_error("genmodels export")
def export_main(argv: list[str]) -> Path:
    """``genmodels export --ckpt PATH --out generator.pt [--format weights|program]``."""
    args = _export_parser().parse_args(argv)
    model = load_generative_model(args.ckpt, args.device)
    if args.format == "weights":
        path = export_weights(model, args.out)
        print(f"weights-only generator of {type(model).__name__} -> {path} (open with torch.load(weights_only=True), "
              "or pass it as --ckpt to any genmodels command)")
        return path
    path, difference = export_program(model, args.out)
    print(f"torch.export program of {type(model).__name__} -> {path}; max |exported - eager| = {difference:.3g}")
    return path
