"""What every family's digits config produces after N iterations, judged by a digits classifier.

Each family is built from its own ``experiments/<family>/digits.yaml`` (model and data sections,
seed ``--seed``), trained on the CPU for a fixed number of iterations (batches, never seconds),
and judged on ``--samples`` samples from ``model.sample`` (the EMA generator where there is one):

- ``fid_lenet``: Fréchet distance between the samples and the training digits in the 84-d
  features of a LeNet-5 trained on the digits (`genmodels.metrics.classifier`); real held-out
  digits score about 6-7 against the training digits;
- ``classes``: digit classes that receive at least 1 % of the samples (`ModeCoverage`'s measure);
- ``bits/dim`` on the digits hold-out for the likelihood models (RealNVP, Glow, PixelCNN and the
  independent-pixel baseline), whose samples are judged too.

Usage:
    python scripts/quality_digits.py                          # every family, its table budget
    python scripts/quality_digits.py --families progan --iterations 800 --grid-dir grids/
    python scripts/quality_digits.py --scale 0.25             # a quarter of every budget (busy machine)

The quality-floor tests (tests/quality/test_digits_quality.py) call the same functions.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
LIKELIHOOD = ("realnvp", "glow", "pixelcnn", "independent_pixels")

# Iterations per family for the table: what a user sees after a few CPU minutes, or the
# config's end where that is shorter.
TABLE_ITERATIONS = {
    "gan": 3000, "dcgan": 1500, "cgan": 1500, "wgan_gp": 2000, "biggan": 1000, "progan": 800,
    "stylegan": 800, "stylegan2": 800, "ae": 1000, "vae": 1000, "realnvp": 300, "glow": 500,
    "pixelcnn": 200, "independent_pixels": 300,
}  # fmt: skip
# PixelCNN's and RealNVP's budgets are short because each of their iterations costs 0.8-3 CPU s at
# the configs' widths.


def families() -> list[str]:
    """Every family with an ``experiments/<family>/digits.yaml``, sorted."""
    return sorted(p.parent.name for p in EXPERIMENTS.glob("*/digits.yaml"))


def _instantiate(spec: dict[str, Any], **extra: Any) -> Any:
    module, name = spec["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**{**spec.get("init_args", {}), **extra})


def load_config(family: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((EXPERIMENTS / family / "digits.yaml").read_text())


def build(
    family: str, model_overrides: Optional[dict[str, Any]] = None, seed: Optional[int] = None, data_overrides: Optional[dict[str, Any]] = None
) -> tuple[Any, Any]:
    """(model, datamodule) of ``family``'s digits config, with overrides on the init_args of each.

    The datamodule's ``image_shape`` is linked into the model as the CLI links it.
    """
    import pytorch_lightning as pl

    config = load_config(family)
    pl.seed_everything(config.get("seed_everything", 0) if seed is None else seed, verbose=False)
    data = _instantiate(config["data"], **(data_overrides or {}))
    model_spec = copy.deepcopy(config["model"])
    model_spec.setdefault("init_args", {}).update(model_overrides or {})
    return _instantiate(model_spec, image_shape=data.image_shape), data


def train(model: Any, data: Any, iterations: int, callbacks: Sequence[Any] = ()) -> tuple[float, float]:
    """Fit ``model`` on ``data`` on the CPU for ``iterations`` batches: (wall, process CPU) seconds.

    With one thread the CPU time is what the run takes on an idle core, whatever else runs.
    """
    import pytorch_lightning as pl

    from genmodels.callbacks import StopAtIteration

    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[*callbacks, StopAtIteration(iterations)],
    )  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, data)
    assert model.iteration == iterations, (model.iteration, iterations)
    return time.perf_counter() - start, time.process_time() - cpu


@dataclass
class Judge:
    """A digits LeNet and the training digits' feature statistics at each image size."""

    classifier: Any
    reference: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def train(cls, epochs: int = 5, seed: int = 0, path: Optional[Path] = None) -> "Judge":
        """``genmodels train-classifier``'s LeNet on the digits, 5 epochs (96% held out, ~5 CPU seconds).

        With ``path``, reused from there if saved (written otherwise).
        """
        from datamodules import DigitsDataModule
        from genmodels.metrics.classifier import load_classifier, save_classifier, train_classifier

        if path is not None and Path(path).is_file():
            return cls(load_classifier(path))
        classifier = train_classifier(DigitsDataModule(image_size=32, batch_size=64), epochs=epochs, seed=seed, log=lambda _: None)
        if path is not None:
            save_classifier(classifier, path)
        return cls(classifier)

    def _statistics(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from genmodels.metrics.functional import mean_and_covariance, moment_sums

        features = torch.cat([self.classifier(chunk).features for chunk in images.split(512)]).double()
        return mean_and_covariance(*moment_sums(features), len(features))

    def real(self, image_size: int, split: str = "train") -> torch.Tensor:
        """The digits of ``split`` at ``image_size`` in [-1, 1], as the datamodule feeds a model."""
        from datamodules import DigitsDataModule
        from datamodules.base import resize_uint8

        images, _ = DigitsDataModule(image_size=image_size).read_split(split)
        return resize_uint8(images, image_size).float() / 127.5 - 1

    def reference_statistics(self, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if image_size not in self.reference:
            self.reference[image_size] = self._statistics(self.real(image_size))
        return self.reference[image_size]

    def score(self, samples: torch.Tensor) -> dict[str, Any]:
        """``fid_lenet`` against the training digits and the classes covered by ``samples``."""
        from genmodels.callbacks.mode_coverage import coverage
        from genmodels.metrics.functional import frechet_distance

        mu, sigma = self._statistics(samples)
        mu_real, sigma_real = self.reference_statistics(samples.shape[-1])
        labels = torch.cat([self.classifier.predict(chunk) for chunk in samples.split(512)])
        classes, entropy, counts = coverage(labels, int(self.classifier.meta["num_classes"]), 0.01)
        return {"fid_lenet": float(frechet_distance(mu, sigma, mu_real, sigma_real)), "classes": classes,
                "entropy": entropy, "counts": counts.long().tolist()}


@torch.no_grad()
def draw(model: Any, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples (class labels cycling through 0..9 for class-conditional models), fixed seed."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    chunks, condition = [], None
    for start in range(0, n, 250):
        size = min(250, n - start)
        if getattr(model, "num_classes", None):
            condition = torch.arange(start, start + size) % int(model.num_classes)
        chunks.append(model.sample(size, condition=condition, generator=generator).float().cpu())
    model.train()
    return torch.cat(chunks)


@torch.no_grad()
def holdout_bits_per_dim(model: Any, data: Any) -> float:
    """Mean bits/dim of the digits hold-out (fixed dequantization noise)."""
    model.eval()
    data.setup("test")
    total = count = 0.0
    for index, batch in enumerate(data.test_dataloader()):
        batch = data.on_after_batch_transfer(batch, 0)
        generator = torch.Generator().manual_seed(1234 + index)
        bpd = model.bits_per_dim(batch, generator=generator)
        total, count = total + float(bpd.sum()), count + len(bpd)
    model.train()
    return total / count


def measure(
    family: str,
    iterations: int,
    judge: Judge,
    seed: Optional[int] = None,
    model_overrides: Optional[dict[str, Any]] = None,
    num_samples: int = 1000,
    grid: Optional[Path] = None,
    score_at: Sequence[int] = (),
    data_overrides: Optional[dict[str, Any]] = None,
    samples_out: Optional[Path] = None,
) -> dict[str, Any]:
    """Train ``family``'s digits config for ``iterations`` and judge it; optionally save a sample grid.

    ``score_at``: earlier iterations also judged (returned under ``"earlier"``).
    """
    import pytorch_lightning as pl

    model, data = build(family, model_overrides, seed, data_overrides)
    earlier: list[dict[str, Any]] = []

    class Probe(pl.Callback):  # scores at the earlier iterations of ``score_at`` without stopping
        def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
            if module.iteration in score_at and module.iteration < iterations:
                earlier.append({"family": family, "iterations": module.iteration, "seconds": float("nan"),
                                **judge.score(draw(module, num_samples))})

    seconds, cpu_seconds = train(model, data, iterations, [Probe()])
    samples = draw(model, num_samples)
    if samples_out is not None:  # uint8, to judge again with another classifier
        from genmodels.images import to_uint8

        torch.save(to_uint8(samples), samples_out)
    row = {"family": family, "iterations": iterations, "seconds": seconds, "cpu_seconds": cpu_seconds, **judge.score(samples), "earlier": earlier}
    if family in LIKELIHOOD:
        row["bits_per_dim"] = holdout_bits_per_dim(model, data)
    if grid is not None:
        from genmodels.images import save_png, uint8_grid

        grid.parent.mkdir(parents=True, exist_ok=True)
        save_png(uint8_grid(samples[:64], nrow=8), grid)
    return row


def format_row(row: dict[str, Any]) -> str:
    bpd = f"{row['bits_per_dim']:.3f}" if "bits_per_dim" in row else "-"
    return (f"| {row['family']} | {row['iterations']:,} | {row['fid_lenet']:.1f} | {bpd} | {row['classes']} "
            f"| {row['seconds']:.0f} | {row['cpu_seconds']:.0f} |")


def main(argv: Optional[list[str]] = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=None, help="default: every family with a digits config")
    parser.add_argument("--iterations", type=int, default=None, help="one budget for all (default: the table's)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every table budget (busy machine)")
    parser.add_argument("--seed", type=int, default=None, help="default: each config's seed_everything")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid-dir", type=Path, default=None, help="save an 8x8 sample grid per family here")
    parser.add_argument("--judge", type=Path, default=None, help="classifier file: reused if it exists, else written")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.families or families()
    unknown = sorted(set(names) - set(families()))
    if unknown:
        parser.error(f"no experiments/<family>/digits.yaml for: {', '.join(unknown)}")
    judge = Judge.train(path=args.judge)
    real = judge.score(judge.real(32, "test"))
    print(f"judge: LeNet-5, held-out accuracy {judge.classifier.meta['test_accuracy']:.3f}; "
          f"held-out real digits: fid_lenet {real['fid_lenet']:.1f}, {real['classes']} classes")
    print("| family | iterations | fid_lenet | bits/dim | classes | wall s | CPU s |\n|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for family in names:
        budget = args.iterations or max(1, round(TABLE_ITERATIONS.get(family, 500) * args.scale))
        grid = args.grid_dir / f"{family}-{budget}.png" if args.grid_dir else None
        rows.append(measure(family, budget, judge, args.seed, num_samples=args.samples, grid=grid))
        print(format_row(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
