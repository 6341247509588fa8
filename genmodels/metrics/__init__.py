"""Evaluation of generative models: FID, IS, KID and precision/recall on a shared feature extractor.

- `functional`: the mathematics as pure functions on features (FID in float64, IS, KID, P/R);
- `modular`: torchmetrics `Metric` classes holding DDP-reduced state (`FrechetDistance`,
  `InceptionScore`, `KernelDistance`, `PrecisionRecall`);
- `extractors`, `inception`, `classifier`: the networks (InceptionV3 from a local weights file, a
  LeNet domain classifier for MNIST-like data), pinned by SHA-256;
- `reference`: real-image statistics, cached on disk;
- `evaluator`: one extractor feeding the requested metrics from ``model.sample``;
- `commands`: ``genmodels evaluate``, ``train-classifier``, ``prefetch-weights``.

Papers: Heusel et al. 2017 (FID, arXiv:1706.08500); Salimans et al. 2016 (IS, arXiv:1606.03498);
Bińkowski et al. 2018 (KID, arXiv:1801.01401); Kynkäänniemi et al. 2019 (precision/recall,
arXiv:1904.06991). The training-time callback is `genmodels.callbacks.GenerativeMetrics`.
"""

# Imported for their registration as extractors ("classifier:PATH", "inception").
from genmodels.metrics import classifier, inception  # noqa: F401
from genmodels.metrics.evaluator import METRICS, GenerativeEvaluator, parse_metrics
from genmodels.metrics.extractors import FeatureExtractor, Features, build_extractor, file_sha256
from genmodels.metrics.modular import FrechetDistance, InceptionScore, KernelDistance, PrecisionRecall
from genmodels.metrics.reference import ReferenceStatistics, StatisticsCache

__all__ = [
    "METRICS",
    "GenerativeEvaluator",
    "parse_metrics",
    "FeatureExtractor",
    "Features",
    "build_extractor",
    "file_sha256",
    "FrechetDistance",
    "InceptionScore",
    "KernelDistance",
    "PrecisionRecall",
    "ReferenceStatistics",
    "StatisticsCache",
]
