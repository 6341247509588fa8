"""One evaluation: an extractor shared by the requested metrics, fed from ``model.sample``.

`GenerativeEvaluator` runs its extractor once per batch of images and hands the pool features to
FID / KID / precision-recall and the logits to IS (the metric classes of
`genmodels.metrics.modular`). Values come back under names that carry the extractor
(``fid_inception``, ``is_lenet``, ...), and `GenerativeEvaluator.protocol` describes how they
were computed. Used by the ``GenerativeMetrics`` callback and by ``genmodels evaluate``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from genmodels.metrics import functional as F
from genmodels.metrics.extractors import FeatureExtractor
from genmodels.metrics.modular import FrechetDistance, InceptionScore, KernelDistance, PrecisionRecall
from genmodels.metrics.reference import ReferenceStatistics
from genmodels.errors import InvalidValue

__all__ = ["METRICS", "parse_metrics", "GenerativeEvaluator", "batch_sizes", "sample_shares"]

#: Metric names accepted by ``--metrics`` and the callback, in reporting order.
METRICS = ("fid", "is", "kid", "pr")


def parse_metrics(metrics: Union[str, Sequence[str]]) -> list[str]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> ``["fid", "kid"]`` (checked, deduplicated, ordered)."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = sorted(set(names) - set(METRICS))
    if unknown or not names:
        problem = f"unknown metrics {unknown}" if unknown else "no metrics given"
        raise InvalidValue(f"{problem}: choose among {', '.join(METRICS)} (e.g. fid,is)")
    return [m for m in METRICS if m in names]


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
        metrics: Union[str, Sequence[str]] = "fid",
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        seed: int = F.REFERENCE_SEED,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.names = parse_metrics(metrics)
        d = extractor.num_features
        builders: dict[str, Callable[[], nn.Module]] = {
            "fid": lambda: FrechetDistance(d),
            "is": lambda: InceptionScore(extractor.num_logits, splits=is_splits, seed=seed),
            "kid": lambda: KernelDistance(d, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed),
            "pr": lambda: PrecisionRecall(d, k=pr_k),
        }
        self.metrics = nn.ModuleDict({name: builders[name]() for name in self.names})
        self.num_generated = 0

    @property
    def needs_reference(self) -> bool:
        """Whether real statistics are needed (every metric but IS)."""
        return any(name != "is" for name in self.names)

    @property
    def needs_reference_features(self) -> bool:
        """Whether the real features themselves are needed (KID, precision/recall)."""
        return "kid" in self.names or "pr" in self.names

    @property
    def device(self) -> torch.device:
        return next(self.extractor.parameters()).device

    def set_reference(self, reference: ReferenceStatistics) -> None:
        """Give FID the real mean/covariance and KID / precision-recall the real features."""
        if "fid" in self.metrics:
            self.metrics["fid"].set_reference(reference.mean, reference.cov, reference.n)
        for name in ("kid", "pr"):
            if name in self.metrics:
                if reference.features is None:
                    raise InvalidValue(f"{name} needs the real features, but the reference holds moments only")
                self.metrics[name].set_reference(reference.features)

    def reset(self) -> None:
        """Forget the generated samples (the reference stays)."""
        for metric in self.metrics.values():
            metric.reset()
        self.num_generated = 0

    def update(self, images: Tensor) -> None:
        """Score a batch of generated images ``(N, C, H, W)`` in [-1, 1]: one extractor pass."""
        out = self.extractor(images.to(self.device))
        for name, metric in self.metrics.items():
            metric.update(out.logits if name == "is" else out.features)
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
        suffix = self.extractor.name
        values: dict[str, float] = {}
        for name, metric in self.metrics.items():
            result = metric.compute()
            if name == "fid":
                values[f"fid_{suffix}"] = float(result)
            elif name == "pr":
                values[f"precision_{suffix}"], values[f"recall_{suffix}"] = float(result[0]), float(result[1])
            else:
                values[f"{name}_{suffix}"], values[f"{name}_{suffix}_std"] = float(result[0]), float(result[1])
        return values

    def protocol(self) -> dict[str, Any]:
        """How the values are computed: extractor (and hash) and each metric's settings."""
        settings: dict[str, Any] = {}
        for name, metric in self.metrics.items():
            if name == "fid":
                settings[name] = {"statistics": "float64 running sums", "covariance": "unbiased (N-1)"}
            elif name == "is":
                settings[name] = {"splits": metric.splits, "split_seed": metric.seed, "std": "population"}
            elif name == "kid":
                settings[name] = {
                    "subsets": metric.subsets,
                    "subset_size": metric.subset_size,
                    "kernel": f"polynomial degree {metric.degree}, gamma 1/d, coef {metric.coef}",
                    "subset_seed": metric.seed,
                }
            else:
                settings[name] = {"k": metric.k}
        return {**self.extractor.protocol(), "metrics": settings}
