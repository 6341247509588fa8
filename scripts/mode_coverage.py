"""Mode coverage of saved generators: classes found among their samples by a domain classifier.

The same measure as the ``ModeCoverage`` callback (a class is covered when it receives at least
``--min-fraction`` of the samples; entropy of the label histogram in bits, log2(10) = 3.32 for a
balanced digits model), applied after the fact to every checkpoint given, in order:

    genmodels train-classifier --data experiments/wgan_gp/digits.yaml --out lenet.pt
    python scripts/mode_coverage.py runs/wgan_gp-digits/checkpoints/iter_*.ckpt --classifier lenet.pt
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from genmodels.callbacks.mode_coverage import coverage
from genmodels.checkpoints import load_model
from genmodels.metrics.classifier import load_classifier


def _iteration_order(path: Path) -> tuple[int, str]:
    match = re.search(r"(\d+)", path.stem)
    return (int(match.group(1)) if match else -1, path.name)


@torch.no_grad()
def measure(checkpoint: Path, classifier, num_samples: int, min_fraction: float, seed: int) -> dict:
    model = load_model(checkpoint)
    generator = torch.Generator().manual_seed(seed)
    samples = torch.cat([model.sample(min(256, num_samples - i), generator=generator) for i in range(0, num_samples, 256)])
    classes, entropy, counts = coverage(classifier.predict(samples), classifier.meta["num_classes"], min_fraction)
    return {"iteration": model.iteration, "classes": classes, "entropy": entropy, "counts": counts.long().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--classifier", required=True, help="a file written by `genmodels train-classifier`")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--min-fraction", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    classifier = load_classifier(args.classifier).eval()
    print(f"{'iteration':>9}  {'classes':>7}  {'entropy':>7}  samples per class ({args.num_samples} samples, "
          f"covered at >= {args.min_fraction:.0%})")
    for checkpoint in sorted(args.checkpoints, key=_iteration_order):
        row = measure(checkpoint, classifier, args.num_samples, args.min_fraction, args.seed)
        print(f"{row['iteration']:>9}  {row['classes']:>7}  {row['entropy']:>7.3f}  {row['counts']}")


if __name__ == "__main__":
    main()
