"""One evaluation: an extractor shared by the requested metrics, fed from ``model.sample``.

`GenerativeEvaluator` runs its extractor once per batch of images and hands each metric what its
class declares (`genmodels.metrics.modular.EvaluationMetric`: the pool features or the logits, and
the real moments or features it compares with); it knows no metric by name. Values come back
under names that carry the extractor (``fid_inception``, ``is_lenet``, ...), and
`GenerativeEvaluator.protocol` describes how they were computed. Used by the
``GenerativeMetrics`` callback and by ``genmodels evaluate``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from genmodels.metrics import functional as F
from genmodels.metrics.extractors import FeatureExtractor
from genmodels.metrics.modular import METRIC_CLASSES, EvaluationMetric
from genmodels.metrics.reference import ReferenceStatistics
from genmodels.errors import InvalidValue

__all__ = ["METRICS", "parse_metrics", "GenerativeEvaluator", "batch_sizes", "sample_shares"]

#: Metric names accepted by ``--metrics`` and the callback, in reporting order.
METRICS = tuple(METRIC_CLASSES)

MetricSpec = Union[str, type[EvaluationMetric]]


def parse_metrics(metrics: Union[str, Sequence[MetricSpec]]) -> list[MetricSpec]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> ``["fid", "kid"]`` (checked, deduplicated, ordered).

    Metric classes (`EvaluationMetric` subclasses) may stand among the names; they follow them.
    """
    given = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [n.strip().lower() for n in given if isinstance(n, str) and n.strip()]
    classes = [m for m in given if isinstance(m, type) and issubclass(m, EvaluationMetric)]
    unknown = sorted(set(names) - set(METRIC_CLASSES))
    if unknown or not (names or classes):
        problem = f"unknown metrics {unknown}" if unknown else "no metrics given"
        raise InvalidValue(f"{problem}: choose among {', '.join(METRIC_CLASSES)} (e.g. fid,is)")
    return [m for m in METRIC_CLASSES if m in names] + [c for c in classes if c.key not in names]


def batch_sizes(total: int, batch_size: int) -> Iterator[int]:
    """Sizes of consecutive batches covering ``total`` items."""
    for start in range(0, total, batch_size):
        yield min(batch_size, total - start)


def sample_shares(num_samples: int, world_size: int) -> list[int]:
    """How many of ``num_samples`` each rank generates (the first ranks take the remainder)."""
    return [num_samples // world_size + (rank < num_samples % world_size) for rank in range(world_size)]


class GenerativeEvaluator(nn.Module):
    """The requested metrics over one shared extractor.

    Args:
        extractor: the feature extractor (Inception or a domain classifier).
        metrics: names among ``fid``, ``is``, ``kid``, ``pr`` (or a comma-separated string).
        is_splits: IS splits.
        kid_subsets, kid_subset_size: KID subsets and their size (capped by the sample counts).
        pr_k: neighbourhood size of precision/recall.
        seed: seed of IS splits and KID subsets (torch-fidelity's 2020 by default).

    Example (an untrained LeNet stands in for a trained extractor; FID would also need
    ``set_reference`` with real statistics, see `genmodels.metrics.reference`):
        >>> from genmodels import DCGAN
        >>> from genmodels.metrics.classifier import DomainClassifier, LeNet5
        >>> _ = torch.manual_seed(0)
        >>> extractor = DomainClassifier(LeNet5(), {"image_size": 32, "channels": 1, "num_classes": 10})
        >>> evaluator = GenerativeEvaluator(extractor, "is", is_splits=2)
        >>> model = DCGAN(image_shape=(1, 32, 32), latent_dim=8, feature_maps=4)
        >>> evaluator.sample_from(model, 16, batch_size=8, generator=torch.Generator().manual_seed(0))
        >>> values = evaluator.compute()
        >>> sorted(values), 1.0 <= values["is_lenet"] <= 10.0  # IS lies between 1 and the class count
        (['is_lenet', 'is_lenet_std'], True)
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        metrics: Union[str, Sequence[MetricSpec]] = "fid",
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        seed: int = F.REFERENCE_SEED,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        classes = [METRIC_CLASSES[m] if isinstance(m, str) else m for m in parse_metrics(metrics)]
        self.names = [cls.key for cls in classes]
        options = dict(is_splits=is_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, pr_k=pr_k, seed=seed)
        self.metrics = nn.ModuleDict({cls.key: cls.for_evaluation(extractor, **options) for cls in classes})
        self.num_generated = 0

    @property
    def needs_reference(self) -> bool:
        """Whether any metric compares with real statistics."""
        return any(metric.reference is not None for metric in self.metrics.values())

    @property
    def needs_reference_features(self) -> bool:
        """Whether any metric needs the real features themselves (not only their moments)."""
        return any(metric.reference == "features" for metric in self.metrics.values())

    @property
    def device(self) -> torch.device:
        return next(self.extractor.parameters()).device

    def set_reference(self, reference: ReferenceStatistics) -> None:
        """Give each metric the real statistics it declares (moments or features)."""
        for metric in self.metrics.values():
            metric.use_reference(reference)

    def reset(self) -> None:
        """Forget the generated samples (the reference stays)."""
        for metric in self.metrics.values():
            metric.reset()
        self.num_generated = 0

    def update(self, images: Tensor) -> None:
        """Score a batch of generated images ``(N, C, H, W)`` in [-1, 1]: one extractor pass."""
        out = self.extractor(images.to(self.device))
        for metric in self.metrics.values():
            metric.update(out.logits if metric.takes == "logits" else out.features)
        self.num_generated += len(images)

    @torch.no_grad()
    def sample_from(
        self,
        model: Any,
        num_samples: int,
        batch_size: int = 64,
        generator: Optional[torch.Generator] = None,
        progress: Optional[Callable[[int], None]] = None,
    ) -> None:
        """Draw ``num_samples`` images through ``model.sample`` (eval mode, no grad) and score them.

        The model's train/eval mode is restored afterwards; randomness comes only from
        ``generator``, so the global RNG (and with it exact resume) is untouched.
        """
        was_training = model.training
        model.eval()
        try:
            for size in batch_sizes(num_samples, batch_size):
                self.update(model.sample(size, generator=generator))
                if progress is not None:
                    progress(size)
        finally:
            model.train(was_training)

    def compute(self) -> dict[str, float]:
        """Every metric over all ranks; call on every rank (collective under DDP)."""
        values: dict[str, float] = {}
        for metric in self.metrics.values():
            values.update(metric.values(metric.compute(), self.extractor.name))
        return values

    def protocol(self) -> dict[str, Any]:
        """How the values are computed: extractor (and hash) and each metric's settings."""
        settings = {name: metric.settings() for name, metric in self.metrics.items()}
        return {**self.extractor.protocol(), "metrics": settings}
