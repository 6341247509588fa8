"""Data-efficient GAN training on a small digits set, and BigGAN against a projection cGAN.

Trains each (model, seed) in this process on scikit-learn's digits at 32x32 and scores it with
``fid_lenet`` (FID in the features of a LeNet digits classifier, `genmodels train-classifier`)
against the FULL digits training split (1,617 images), plus class accuracy (the share of samples
the classifier assigns to the class they were drawn for) for class-conditional models. The
training split can be cut to ``--train-images`` (a seeded random subset, for the data-efficiency
comparison); the subset lives only in this script.

    genmodels train-classifier --data experiments/dcgan/digits.yaml --out lenet_digits.pt
    python scripts/augment_digits.py --classifier lenet_digits.pt --train-images 200 --iterations 1500 \
        --models dcgan,dcgan_diffaugment,dcgan_ada --seeds 0,1,2
    python scripts/augment_digits.py --classifier lenet_digits.pt --seconds 900 --models biggan,cgan_projection

``--seconds`` gives every run the same wall-clock budget instead of an iteration count.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any, Optional

import pytorch_lightning as pl
import torch

from datamodules import DigitsDataModule
from genmodels import DCGAN, BigGAN, ConditionalGAN
from genmodels.callbacks import StopAtIteration
from genmodels.metrics.classifier import load_classifier
from genmodels.metrics.evaluator import GenerativeEvaluator
from genmodels.metrics.reference import ReferenceImages, compute_reference, reference_key

DCGAN_ARGS = dict(latent_dim=100, feature_maps=32, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999))
MODELS: dict[str, Any] = {
    "dcgan": lambda shape: DCGAN(image_shape=shape, **DCGAN_ARGS),
    # DiffAugment's policy for small data (all three ops; the paper's choice at 100-shot and 10% CIFAR).
    "dcgan_diffaugment": lambda shape: DCGAN(image_shape=shape, augment="diffaugment", **DCGAN_ARGS),
    # ADA with the official target, interval and speed (500 kimg per unit of p).
    "dcgan_ada": lambda shape: DCGAN(image_shape=shape, augment="ada", **DCGAN_ARGS),
    # experiments/biggan/digits.yaml's model.
    "biggan": lambda shape: BigGAN(image_shape=shape, num_classes=10, latent_dim=128, channels=64, shared_dim=64),
    # experiments/cgan/cifar10.yaml's setting (projection D, hinge, SN, EMA) at digits' size.
    "cgan_projection": lambda shape: ConditionalGAN(
        image_shape=shape, num_classes=10, discriminator_conditioning="projection", latent_dim=128, feature_maps=32,
        discriminator_norm="none", loss="hinge", spectral_norm=True, betas=(0.5, 0.999), ema_decay=0.999, ema_start=200,
    ),
}


class DigitsSubset(DigitsDataModule):
    """Digits whose training split is a seeded random subset of ``train_images`` images."""

    def __init__(self, train_images: Optional[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_images = train_images

    def read_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = super().read_split(split)
        if split != "train" or self.train_images is None:
            return images, labels
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1234))[: self.train_images]
        return images[keep], labels[keep]


class StopAtSeconds(pl.Callback):
    """Stop after a wall-clock budget (measured from the first training batch)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.started = seconds, 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if time.perf_counter() - self.started >= self.seconds:
            trainer.should_stop = True


def train(name: str, seed: int, args: argparse.Namespace) -> tuple[Any, float]:
    pl.seed_everything(seed, workers=True)
    data = DigitsSubset(args.train_images, image_size=32, batch_size=args.batch_size)
    model = MODELS[name]((1, 32, 32))
    stop = StopAtSeconds(args.seconds) if args.seconds else StopAtIteration(args.iterations)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[stop],
    )
    started = time.perf_counter()
    trainer.fit(model, data)
    return model.eval(), time.perf_counter() - started


@torch.no_grad()
def score(model: Any, classifier: Any, evaluator: GenerativeEvaluator, num_samples: int) -> dict[str, float]:
    evaluator.reset()
    generator = torch.Generator().manual_seed(0)
    evaluator.sample_from(model, num_samples, 250, generator)
    row = {"fid_lenet": float(evaluator.compute()["fid_lenet"])}
    if getattr(model, "num_classes", 0):
        labels = torch.arange(num_samples) % 10
        samples = torch.cat([model.sample(len(c), condition=c, generator=generator) for c in labels.split(250)])
        row["class_accuracy"] = float((classifier.predict(samples) == labels).float().mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", required=True, help="a file written by `genmodels train-classifier` on digits")
    parser.add_argument("--models", default="dcgan,dcgan_diffaugment,dcgan_ada", help=f"comma-separated: {','.join(MODELS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-images", type=int, default=None, help="cut the training split to this many images")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=None, help="wall-clock budget per run (instead of --iterations)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)

    classifier = load_classifier(args.classifier).eval()
    evaluator = GenerativeEvaluator(classifier, "fid")
    full = DigitsDataModule(image_size=32)
    full.setup("fit")
    images = ReferenceImages(full, "train")
    evaluator.set_reference(compute_reference(classifier, images, reference_key(images, classifier, False), 256))

    budget = f"{args.seconds:.0f} s" if args.seconds else f"{args.iterations} iterations"
    print(f"digits 32x32, training images: {args.train_images or 'all'}, {budget} per run, batch {args.batch_size}, "
          f"{args.num_samples} samples vs the full training split (1 CPU thread)")
    print(f"{'model':18s} {'seed':>4s} {'iters':>6s} {'s':>6s} {'fid_lenet':>9s} {'class_acc':>9s}")
    results: dict[str, list[dict[str, float]]] = {}
    for name in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            model, seconds = train(name, seed, args)
            row = score(model, classifier, evaluator, args.num_samples)
            results.setdefault(name, []).append(row)
            acc = f"{row['class_accuracy']:9.3f}" if "class_accuracy" in row else f"{'-':>9s}"
            print(f"{name:18s} {seed:4d} {model.iteration:6d} {seconds:6.0f} {row['fid_lenet']:9.3f} {acc}", flush=True)
    print("\nmean +- std over seeds")
    for name, rows in results.items():
        fids = [r["fid_lenet"] for r in rows]
        spread = statistics.stdev(fids) if len(fids) > 1 else math.nan
        print(f"{name:18s} fid_lenet {statistics.mean(fids):8.3f} +- {spread:.3f}", end="")
        if "class_accuracy" in rows[0]:
            print(f"   class accuracy {statistics.mean(r['class_accuracy'] for r in rows):.3f}", end="")
        print()


if __name__ == "__main__":
    main()
