"""Bits/dim on the embedded digits for RealNVP, Glow, PixelCNN and the independent-pixel baseline.

Each model is built from its experiment file, ``experiments/<family>/digits.yaml``, through the
genmodels CLI (so the figures are those of the configs users run), evaluated on the digits
hold-out before training, trained for ``--iterations`` batches on the CPU with a validation pass
every ``--val-every`` iterations, and evaluated again. Prints one table: bits/dim of the discrete
8-bit data, where 8.0 is the uniform distribution and the independent-pixel baseline is the floor
a model with structure must beat. Run directories (sample grids, temperature grids, checkpoints)
go under ``--out``.

Usage:
    python scripts/likelihood_digits.py                                # all four, 300 iterations
    python scripts/likelihood_digits.py --iterations 100 --models glow independent_pixels
    python scripts/likelihood_digits.py --image-size 16 --threads 2    # faster, 16x16 digits
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

FAMILIES = ("independent_pixels", "realnvp", "glow", "pixelcnn")
ROOT = Path(__file__).resolve().parents[1]


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="training batches per model")
    parser.add_argument("--val-every", type=int, default=50, help="validation interval in iterations (multiple of 25)")
    parser.add_argument("--models", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--image-size", type=int, default=None, help="override the configs' 32x32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--out", default=None, help="folder for the run directories (default: a temp dir)")
    return parser.parse_args()


def _cli_args(family: str, args: argparse.Namespace, run_dir: Path) -> list[str]:
    # 1,617 training digits at batch 64: 25 iterations per epoch.
    cli = [
        "--config", str(ROOT / "experiments" / family / "digits.yaml"),
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.accelerator", "cpu",
        "--trainer.num_sanity_val_steps", "0",
        "--trainer.check_val_every_n_epoch", str(max(1, args.val_every // 25)),
        "--trainer.default_root_dir", str(run_dir),
        "--checkpoint.every_n_iterations", "0",
        "--sample_grid.every_n_iterations", "0",
    ]
    if args.image_size is not None:
        cli += ["--data.init_args.image_size", str(args.image_size)]
    return cli


def _curve_recorder() -> Any:
    import pytorch_lightning as pl

    class Curve(pl.Callback):
        """Records (iteration, val bits/dim) after every validation pass inside ``fit``."""

        def __init__(self) -> None:
            self.points: list[tuple[int, float]] = []

        def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            if trainer.state.fn == "fit" and "val/bits_per_dim" in trainer.callback_metrics:
                self.points.append((pl_module.iteration, float(trainer.callback_metrics["val/bits_per_dim"])))

    return Curve()


def run(family: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Validate, train, validate one model; returns its figures."""
    from genmodels.cli import GenModelsCLI

    from genmodels.callbacks import StopAtIteration

    cli = GenModelsCLI(args=_cli_args(family, args, out / family), run=False)
    curve = _curve_recorder()
    # Without a subcommand (run=False) the CLI leaves --max_iterations to the caller.
    cli.trainer.callbacks += [StopAtIteration(args.iterations), curve]
    before = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]["val/bits_per_dim"]
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    after = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]["val/bits_per_dim"]
    train = cli.trainer.callback_metrics.get("train/bits_per_dim")
    return {"family": family, "before": before, "after": after, "curve": curve.points, "seconds": seconds,
            "iterations": cli.model.iteration, "train": None if train is None else float(train),
            "shape": cli.model.image_shape, "run_dir": out / family}


def main() -> None:
    args = _parse()
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="likelihood_digits_"))
    results = [run(family, args, out) for family in args.models]

    baseline = next((r["after"] for r in results if r["family"] == "independent_pixels"), None)
    print(f"\nval bits/dim on the digits hold-out (8-bit data; uniform = 8.000), image {results[0]['shape']}")
    print(f"{'model':<20}{'iterations':>11}{'before':>9}{'after':>9}{'vs baseline':>13}{'CPU s':>8}  curve (iteration: bits/dim)")
    for r in results:
        delta = "" if baseline is None else f"{r['after'] - baseline:+.3f}"
        curve = ", ".join(f"{it}: {bpd:.3f}" for it, bpd in r["curve"])
        print(f"{r['family']:<20}{r['iterations']:>11}{r['before']:>9.3f}{r['after']:>9.3f}{delta:>13}{r['seconds']:>8.0f}  {curve}")
    print(f"run directories (samples/, temperature grids): {out}")


if __name__ == "__main__":
    main()
