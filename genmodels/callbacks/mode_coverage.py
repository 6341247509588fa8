"""ModeCoverage: how many classes a generator covers, judged by a domain classifier.

Mode collapse shows as samples concentrating on a few classes. Every N iterations this callback
draws a fixed-seed set of samples (through ``model.sample``: the EMA generator when there is
one), labels them with a classifier trained on the data (``genmodels train-classifier``), and
logs the number of classes that receive at least ``min_fraction`` of the samples and the
entropy of the label histogram in bits (log2(10) = 3.32 for a perfectly balanced digit model).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pytorch_lightning as pl
import torch

from genmodels.callbacks.base import IterationCallback, eval_mode
from genmodels.compat import batches_that_stepped
from genmodels.errors import InvalidValue

__all__ = ["ModeCoverage", "coverage"]


def coverage(labels: torch.Tensor, num_classes: int, min_fraction: float = 0.01) -> tuple[int, float, torch.Tensor]:
    """(classes with at least ``min_fraction`` of the samples, histogram entropy in bits, histogram)."""
    counts = torch.bincount(labels.flatten().long().cpu(), minlength=num_classes)[:num_classes].double()
    p = counts / counts.sum().clamp_min(1)
    entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
    return int((p >= min_fraction).sum()), entropy, counts


class ModeCoverage(IterationCallback):
    """Log ``train/mode_coverage_classes`` and ``train/mode_coverage_entropy`` every N iterations.

    Args:
        classifier: path of a classifier saved by ``genmodels train-classifier``.
        classifier_sha256: expected hash of that file (optional pin).
        every_n_iterations: interval in model iterations; a final value is logged at the end.
        num_samples: samples drawn each time (fixed seed).
        min_fraction: share of the samples a class needs to count as covered.
        seed: seed of the samples.
    """

    def __init__(
        self,
        classifier: str,
        classifier_sha256: Optional[str] = None,
        every_n_iterations: int = 500,
        num_samples: int = 1000,
        min_fraction: float = 0.01,
        seed: int = 0,
    ) -> None:
        if every_n_iterations < 1 or num_samples < 1 or not 0 < min_fraction < 1:
            raise InvalidValue("ModeCoverage needs every_n_iterations >= 1, num_samples >= 1 and 0 < min_fraction < 1")
        super().__init__(every_n_iterations)
        self.classifier_path, self.classifier_sha256 = classifier, classifier_sha256
        self.num_samples, self.min_fraction, self.seed = num_samples, min_fraction, seed
        self.classifier: Any = None
        self.history: list[dict[str, float]] = []

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        from genmodels.metrics.classifier import load_classifier

        # Loaded at setup so a missing or mismatched file fails before any training.
        self.classifier = load_classifier(self.classifier_path, sha256=self.classifier_sha256).eval()

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        self.measure(trainer, pl_module)

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: Any) -> Optional[dict[str, float]]:
        if not trainer.is_global_zero:
            return None  # sampling here has no collectives; rank 0 measures and logs
        with eval_mode(pl_module):
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            samples = torch.cat([
                pl_module.sample(n, generator=generator) for n in _chunks(self.num_samples, 256)
            ])
        classifier = self.classifier.to(samples.device)
        classes, entropy, _ = coverage(classifier.predict(samples), classifier.meta["num_classes"], self.min_fraction)
        values = {"train/mode_coverage_classes": float(classes), "train/mode_coverage_entropy": entropy,
                  "iteration": float(pl_module.iteration)}
        self.history.append(values)
        for logger in trainer.loggers:
            logger.log_metrics(values, step=batches_that_stepped(trainer))
        return values


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]
