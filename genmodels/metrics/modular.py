"""FID, IS, KID and precision/recall as torchmetrics `Metric` classes over extracted features.

The classes hold state (``add_state``), accumulate it in ``update`` and reduce it in ``compute``;
the mathematics is in `genmodels.metrics.functional`. They take *features*, not images, so one
feature extractor serves every metric of an evaluation (`GenerativeEvaluator` runs it once per
batch and feeds each metric its output).

Distributed: every state is declared with its reduction (sums for FID, concatenation for the
others) and torchmetrics all-reduces / all-gathers them inside ``compute``. Call ``update`` and
``compute`` on *every* rank (computing on rank 0 alone deadlocks); every rank gets the same value.

What a metric needs is declared on its class (`EvaluationMetric`): its name (``key``), whether it
reads the extractor's pool ``features`` or its ``logits``, and which real statistics it compares
with (``reference``: none, the ``moments`` mean/covariance, or every real ``features`` vector).
`GenerativeEvaluator` asks the metric instead of knowing it: a new metric is one class here (with
``key`` set, it is registered in `METRIC_CLASSES` and accepted by ``--metrics``) plus its
functional core in `genmodels.metrics.functional`.

Reference (real) statistics can be accumulated with ``update(features, real=True)`` like in
torchmetrics, or set once with ``set_reference(...)`` from a cache. A set reference is a plain
(non-state) buffer: it is already the same on every rank, so it is never reduced.

Memory:
    - `FrechetDistance`: running float64 sums only, ``2 (d + d^2)`` numbers whatever the number of
      samples (2 x 32 MiB at d = 2048); 50,000 samples never exist as a 50,000 x 2048 matrix.
    - `KernelDistance`, `PrecisionRecall`: every feature, ``(N_real + N_generated) x d`` float32 on
      the metric's device (50,000 + 50,000 at d = 2048: 820 MB). Pass ``compute_on_cpu=True`` to
      keep them in host memory between updates (gloo / single process). KID adds three
      ``subset_size^2`` float64 kernel matrices; precision/recall a ``batch_size x N`` block.
    - `InceptionScore`: every logit vector, ``N x K`` float32 (50,000 x 1008: 200 MB).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal, Optional

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from genmodels.metrics import functional as F
from genmodels.errors import InvalidValue

__all__ = ["EvaluationMetric", "METRIC_CLASSES", "FrechetDistance", "KernelDistance", "PrecisionRecall", "InceptionScore",
           "warn_few_samples"]

#: Every metric class with a ``key``, by key, in the order evaluations report them.
METRIC_CLASSES: dict[str, type["EvaluationMetric"]] = {}


def warn_few_samples(n: int, dim: int, what: str) -> None:
    """Warn when ``n`` samples cannot give a full-rank ``dim x dim`` covariance."""
    if n <= dim:
        warnings.warn(
            f"FID from {n} {what} samples of {dim}-d features: the covariance has rank at most {n - 1} < {dim}, "
            f"so the value is biased and unstable; use more than {dim} samples (10,000+ for stable values, "
            "50,000 for numbers comparable with papers)",
            UserWarning,
            stacklevel=3,
        )


def _check_features(features: Tensor, num_features: int, what: str = "features") -> None:
    if features.ndim != 2 or features.shape[1] != num_features:
        raise InvalidValue(f"expected {what} of shape (N, {num_features}), got {tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise InvalidValue(f"{what} contain NaN or infinite values")


# ---------------------------------------------------------------------------------------------


class EvaluationMetric(Metric):
    """A torchmetrics `Metric` that says what an evaluation must give it.

    Class attributes (the declaration `GenerativeEvaluator` reads):
        key: the name in ``--metrics`` and in logged names (``fid`` -> ``fid_inception``).
        takes: ``"features"`` (the extractor's pool features) or ``"logits"`` (its class logits).
        reference: the real statistics compared with: ``None``, ``"moments"`` (mean and
            covariance) or ``"features"`` (every real feature vector).

    Subclasses with a ``key`` register in `METRIC_CLASSES` (``register=False`` in the class
    statement keeps one out, e.g. in a test). They implement `for_evaluation` and may override
    `use_reference`, `values` and `settings`.
    """

    key: ClassVar[str] = ""
    takes: ClassVar[Literal["features", "logits"]] = "features"
    reference: ClassVar[Optional[Literal["moments", "features"]]] = None

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register and "key" in vars(cls):
            METRIC_CLASSES[cls.key] = cls

    @classmethod
    def for_evaluation(cls, extractor: Any, **options: Any) -> "EvaluationMetric":
        """The metric for ``extractor``'s outputs (``num_features``/``num_logits``), with the
        evaluation's ``options`` (``seed``, ``is_splits``, ``kid_subsets``, ...: each takes its own)."""
        raise NotImplementedError(f"{cls.__name__} must implement for_evaluation()")

    def use_reference(self, reference: Any) -> None:
        """Take this metric's real statistics from a `genmodels.metrics.reference.ReferenceStatistics`."""
        if self.reference == "moments":
            self.set_reference(reference.mean, reference.cov, reference.n)
        elif self.reference == "features":
            if reference.features is None:
                raise InvalidValue(f"{self.key} needs the real features, but the reference holds moments only")
            self.set_reference(reference.features)

    def values(self, result: Any, suffix: str) -> dict[str, float]:
        """The logged values of ``compute()``'s ``result``: ``{key}_{suffix}`` (and ``_std`` for a (mean, std) pair)."""
        if isinstance(result, tuple):
            return {f"{self.key}_{suffix}": float(result[0]), f"{self.key}_{suffix}_std": float(result[1])}
        return {f"{self.key}_{suffix}": float(result)}

    def settings(self) -> dict[str, Any]:
        """How the value is computed, for the evaluation's protocol record."""
        return {}


class FrechetDistance(EvaluationMetric):
    """Fréchet distance between Gaussian fits of real and generated features (FID when the
    features are Inception pool3; Heusel et al. 2017, arXiv:1706.08500).

    Args:
        num_features: feature dimension ``d``.
        reset_real_features: whether `reset` also clears accumulated real statistics.
        **kwargs: torchmetrics `Metric` options (``process_group``, ``sync_on_compute``, ...).

    Example:
        >>> generator = torch.Generator().manual_seed(0)
        >>> metric = FrechetDistance(num_features=4)
        >>> metric.update(torch.randn(1000, 4, generator=generator), real=True)
        >>> metric.update(torch.randn(1000, 4, generator=generator) + 1)  # mean moved by 1 in 4 dims
        >>> round(metric.compute().item(), 1)
        4.0
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False
    key = "fid"
    reference = "moments"

    def __init__(self, num_features: int = 2048, reset_real_features: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.reset_real_features = reset_real_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                f"{side}_outer_sum", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum"
            )
            self.add_state(f"{side}_n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.register_buffer("reference_mean", None, persistent=False)
        self.register_buffer("reference_cov", None, persistent=False)
        self.reference_n = 0

    @classmethod
    def for_evaluation(cls, extractor: Any, **options: Any) -> "FrechetDistance":
        return cls(extractor.num_features)

    def settings(self) -> dict[str, Any]:
        return {"statistics": "float64 running sums", "covariance": "unbiased (N-1)"}

    def set_reference(self, mean: Tensor, cov: Tensor, n: int) -> None:
        """Use precomputed real statistics (mean ``(d,)``, covariance ``(d, d)``, from ``n`` images)."""
        if mean.shape != (self.num_features,) or cov.shape != (self.num_features, self.num_features):
            raise InvalidValue(
                f"reference statistics must be ({self.num_features},) and ({self.num_features}, {self.num_features}), "
                f"got {tuple(mean.shape)} and {tuple(cov.shape)}"
            )
        self.reference_mean = mean.to(self.device, torch.float64)
        self.reference_cov = cov.to(self.device, torch.float64)
        self.reference_n = int(n)

    def update(self, features: Tensor, real: bool = False) -> None:
        """Add ``(N, d)`` features of generated (or, with ``real=True``, real) images."""
        _check_features(features, self.num_features)
        if real and self.reference_mean is not None:
            raise InvalidValue("real statistics were set with set_reference(); do not also update(real=True)")
        total, outer = F.moment_sums(features)
        if real:
            self.real_sum, self.real_outer_sum, self.real_n = self.real_sum + total, self.real_outer_sum + outer, self.real_n + len(features)
        else:
            self.fake_sum, self.fake_outer_sum, self.fake_n = self.fake_sum + total, self.fake_outer_sum + outer, self.fake_n + len(features)

    def compute(self) -> Tensor:
        """The distance, a float64 scalar tensor."""
        mean_fake, cov_fake = self._statistics(self.fake_sum, self.fake_outer_sum, self.fake_n, "generated")
        if self.reference_mean is not None:
            mean_real, cov_real = self.reference_mean, self.reference_cov
        else:
            mean_real, cov_real = self._statistics(self.real_sum, self.real_outer_sum, self.real_n, "real")
        return F.frechet_distance(mean_real, cov_real, mean_fake, cov_fake)

    def _statistics(self, total: Tensor, outer: Tensor, count: Tensor, what: str) -> tuple[Tensor, Tensor]:
        n = int(count)
        if n < 2:
            raise InvalidValue(f"FID needs at least 2 {what} samples, got {n}")
        warn_few_samples(n, self.num_features, what)
        return F.mean_and_covariance(total, outer, n)

    def reset(self) -> None:
        kept = (self.real_sum, self.real_outer_sum, self.real_n)
        super().reset()
        if not self.reset_real_features:
            self.real_sum, self.real_outer_sum, self.real_n = kept


# ---------------------------------------------------------------------------------------------


class _FeatureSetMetric(EvaluationMetric):
    """Base of the metrics that need every feature: real and generated sets, or a set reference."""

    is_differentiable = False
    full_state_update = False
    reference = "features"

    def __init__(self, num_features: int = 2048, reset_real_features: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.reset_real_features = reset_real_features
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self.register_buffer("reference_features", None, persistent=False)

    def set_reference(self, features: Tensor) -> None:
        """Use precomputed real features ``(N, d)``."""
        _check_features(features, self.num_features, "reference features")
        self.reference_features = features.to(self.device, torch.float32)

    def update(self, features: Tensor, real: bool = False) -> None:
        """Add ``(N, d)`` features of generated (or, with ``real=True``, real) images."""
        _check_features(features, self.num_features)
        if real and self.reference_features is not None:
            raise InvalidValue("real features were set with set_reference(); do not also update(real=True)")
        (self.real_features if real else self.fake_features).append(features.detach().to(torch.float32))

    def _feature_sets(self) -> tuple[Tensor, Tensor]:
        """(real, generated) features; after a distributed sync the list states are tensors."""
        if not len(self.fake_features):
            raise InvalidValue(f"{type(self).__name__}.compute() called before any generated features were added")
        real = self.reference_features if self.reference_features is not None else self.real_features
        if real is None or not len(real):
            raise InvalidValue(f"{type(self).__name__} has no real features: call set_reference() or update(real=True)")
        return dim_zero_cat(real), dim_zero_cat(self.fake_features)

    def reset(self) -> None:
        kept = self.real_features if not self.reset_real_features else None
        super().reset()
        if kept is not None:
            self.real_features = kept


class KernelDistance(_FeatureSetMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018, arXiv:1801.01401): unbiased MMD^2 with a
    cubic polynomial kernel, averaged over random subsets.

    Args:
        num_features: feature dimension ``d``.
        subsets: number of random subset pairs (100 as in the paper and torch-fidelity).
        subset_size: samples per subset (1000); lowered to the number of samples, with a warning,
            when fewer are available.
        degree, gamma, coef: polynomial kernel ``(gamma x.y + coef)^degree`` (3, 1/d, 1).
        seed: seed of the subset indices (torch-fidelity's 2020 by default).
        reset_real_features: whether `reset` also clears real features added with ``update``.

    Memory: all features, ``(N_real + N_generated) x d`` float32, plus three ``subset_size^2``
    float64 kernel matrices while computing.
    """

    higher_is_better = False
    key = "kid"

    def __init__(
        self,
        num_features: int = 2048,
        subsets: int = 100,
        subset_size: int = 1000,
        degree: int = 3,
        gamma: Optional[float] = None,
        coef: float = 1.0,
        seed: int = F.REFERENCE_SEED,
        reset_real_features: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_features, reset_real_features, **kwargs)
        if subsets < 1 or subset_size < 2:
            raise InvalidValue(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.subsets, self.subset_size = subsets, subset_size
        self.degree, self.gamma, self.coef, self.seed = degree, gamma, coef, seed

    @classmethod
    def for_evaluation(cls, extractor: Any, kid_subsets: int = 100, kid_subset_size: int = 1000,
                       seed: int = F.REFERENCE_SEED, **options: Any) -> "KernelDistance":
        return cls(extractor.num_features, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)

    def settings(self) -> dict[str, Any]:
        return {"subsets": self.subsets, "subset_size": self.subset_size,
                "kernel": f"polynomial degree {self.degree}, gamma 1/d, coef {self.coef}", "subset_seed": self.seed}

    def effective_subset_size(self, n_real: int, n_fake: int) -> int:
        """The subset size actually used: ``subset_size`` capped by the number of samples."""
        return min(self.subset_size, n_real, n_fake)

    def compute(self) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` of MMD^2 over the subsets, float64 scalar tensors."""
        real, fake = self._feature_sets()
        size = self.effective_subset_size(len(real), len(fake))
        if size < self.subset_size:
            warnings.warn(
                f"KID subset_size {self.subset_size} is more than the samples available ({len(real)} real, "
                f"{len(fake)} generated); using subsets of {size}",
                UserWarning,
                stacklevel=2,
            )
        mean, std = F.kernel_inception_distance(
            real, fake, self.subsets, size, self.degree, self.gamma, self.coef, self.seed
        )
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class PrecisionRecall(_FeatureSetMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991).

    Precision: the share of generated samples inside the real manifold (the union of balls
    reaching each real sample's ``k``-th nearest real neighbour); recall: the reverse.
    torchmetrics has no such metric; this follows its conventions.

    Args:
        num_features: feature dimension ``d``.
        k: neighbourhood size (3 in the paper).
        batch_size: rows per block of pairwise distances.
        reset_real_features: whether `reset` also clears real features added with ``update``.

    Memory: all features, ``(N_real + N_generated) x d`` float32, plus one
    ``batch_size x max(N_real, N_generated)`` float32 block of distances while computing.

    Note: the paper uses VGG-16 fc2 features; these numbers are named after the extractor that
    produced the features (``precision_inception``) and are not comparable with VGG-based ones.
    """

    higher_is_better = True
    key = "pr"

    def __init__(
        self,
        num_features: int = 2048,
        k: int = 3,
        batch_size: int = 1024,
        reset_real_features: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_features, reset_real_features, **kwargs)
        if k < 1 or batch_size < 1:
            raise InvalidValue(f"precision/recall need k >= 1 and batch_size >= 1, got {k} and {batch_size}")
        self.k, self.batch_size = k, batch_size

    @classmethod
    def for_evaluation(cls, extractor: Any, pr_k: int = 3, **options: Any) -> "PrecisionRecall":
        return cls(extractor.num_features, k=pr_k)

    def values(self, result: Any, suffix: str) -> dict[str, float]:
        return {f"precision_{suffix}": float(result[0]), f"recall_{suffix}": float(result[1])}

    def settings(self) -> dict[str, Any]:
        return {"k": self.k}

    def compute(self) -> tuple[Tensor, Tensor]:
        """``(precision, recall)`` as float64 scalar tensors."""
        real, fake = self._feature_sets()
        precision, recall = F.precision_recall(real, fake, self.k, self.batch_size)
        return torch.tensor(precision, dtype=torch.float64), torch.tensor(recall, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------


class InceptionScore(EvaluationMetric):
    """Inception Score (Salimans et al. 2016, arXiv:1606.03498) from classifier logits.

    Args:
        num_classes: logit dimension ``K`` (1008 for Inception's ``logits_unbiased``).
        splits: number of splits (10).
        seed: seed of the split assignment (torch-fidelity's 2020); ``None`` keeps the order.
        **kwargs: torchmetrics `Metric` options.

    Memory: every logit vector, ``N x K`` float32.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False
    key = "is"
    takes = "logits"

    def __init__(
        self, num_classes: int = 1008, splits: int = 10, seed: Optional[int] = F.REFERENCE_SEED, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if splits < 1:
            raise InvalidValue(f"IS needs splits >= 1, got {splits}")
        self.num_classes, self.splits, self.seed = num_classes, splits, seed
        self.add_state("logits", [], dist_reduce_fx="cat")

    @classmethod
    def for_evaluation(cls, extractor: Any, is_splits: int = 10, seed: int = F.REFERENCE_SEED,
                       **options: Any) -> "InceptionScore":
        return cls(extractor.num_logits, splits=is_splits, seed=seed)

    def settings(self) -> dict[str, Any]:
        return {"splits": self.splits, "split_seed": self.seed, "std": "population"}

    def update(self, logits: Tensor) -> None:
        """Add ``(N, K)`` logits of generated images."""
        _check_features(logits, self.num_classes, "logits")
        self.logits.append(logits.detach().to(torch.float32))

    def compute(self) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` across splits, float64 scalar tensors."""
        if not len(self.logits):
            raise InvalidValue("InceptionScore.compute() called before any logits were added")
        mean, std = F.inception_score(dim_zero_cat(self.logits), self.splits, self.seed)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
