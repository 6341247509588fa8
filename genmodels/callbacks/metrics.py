"""GenerativeMetrics: FID / IS / KID / precision-recall of samples every N iterations during fit.

Every ``every_n_iterations`` model iterations (not ``trainer.global_step``, which counts optimizer
steps) and once more when training stops, the callback draws ``num_samples`` images through
``model.sample`` and scores them with one shared extractor. Under DDP each rank draws its share
(``num_samples / world_size``, with the generator seeded ``seed + rank``) and every rank updates
and computes, so the states are reduced across ranks and every rank gets the same value (a
computation on rank 0 alone would deadlock).

Values are logged as ``<prefix>/<metric>_<extractor>`` (``val/fid_inception``, ``val/fid_lenet``,
...) through ``pl_module.log`` (so they are in ``trainer.callback_metrics`` and a ModelCheckpoint
can monitor them: a best-FID checkpoint) and to the loggers with the ``iteration`` axis. The
protocol (extractor and hash, number of samples, reference split and size, resolution, metric
settings) goes to the loggers' hyperparameters, to ``callback.last_protocol``, and with every
value to ``<run dir>/metrics.jsonl``.

A job being preempted (`Preemption` received SIGUSR1/SIGTERM) skips its evaluations, so the grace
period goes to the checkpoint; the run continues after the requeue.

Real-image statistics are computed at the first evaluation and kept in memory for the others, and
cached on disk across runs (`genmodels.metrics.reference`). Sampling uses its own seeded
generator in eval mode, so neither the global RNG nor BatchNorm statistics change: a run with the
callback resumes exactly like one without it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from genmodels.callbacks.base import IterationCallback
from genmodels.callbacks.preemption import Preemption
from genmodels.callbacks.stop import StopAtIteration
from genmodels.metrics.evaluator import GenerativeEvaluator, parse_metrics, sample_shares
from genmodels.metrics.extractors import build_extractor
from genmodels.metrics.reference import (
    ReferenceImages,
    ReferenceStatistics,
    StatisticsCache,
    compute_reference,
    reference_key,
)
from genmodels.errors import InvalidValue

__all__ = ["GenerativeMetrics"]


class GenerativeMetrics(IterationCallback):
    """Periodic generative metrics during training.

    Add it from YAML or the command line::

        --trainer.callbacks+=genmodels.callbacks.GenerativeMetrics
        --trainer.callbacks.every_n_iterations 500 --trainer.callbacks.metrics fid,is
        --trainer.callbacks.extractor classifier:lenet-digits.pt

    Args:
        every_n_iterations: interval in model iterations; 0 evaluates only when training ends.
        num_samples: generated images per evaluation, over all ranks (50,000 for paper numbers).
        metrics: among ``fid``, ``is``, ``kid``, ``pr``; a list or a comma-separated string.
        extractor: ``inception`` or ``classifier:PATH`` (see ``genmodels train-classifier``).
        weights: Inception weights file (else ``$GENMODELS_INCEPTION_WEIGHTS``, else the hub cache).
        extractor_sha256: pin the weights / classifier file to this SHA-256 (or prefix).
        reference_split: datamodule split of the real images: ``train``, ``val`` or ``test``.
        num_real: real images used (the first ones of the split); ``None`` uses all of them.
        batch_size: images per generator / extractor call.
        seed: seed of the generated samples (rank ``r`` uses ``seed + r``).
        cache_dir: folder of the real-statistics cache (default ``$GENMODELS_CACHE``, else
            ``~/.cache/genmodels/stats``).
        prefix: prefix of the logged keys.
        evaluate_at_end: also evaluate when training stops (unless that iteration was just evaluated).
        is_splits, kid_subsets, kid_subset_size, pr_k: metric settings (10, 100, 1000, 3).
    """

    def __init__(
        self,
        every_n_iterations: int = 5000,
        num_samples: int = 10000,
        metrics: Union[str, Sequence[str]] = "fid",
        extractor: str = "inception",
        weights: Optional[str] = None,
        extractor_sha256: Optional[str] = None,
        reference_split: str = "train",
        num_real: Optional[int] = None,
        batch_size: int = 64,
        seed: int = 0,
        cache_dir: Optional[str] = None,
        prefix: str = "val",
        evaluate_at_end: bool = True,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
    ) -> None:
        if num_samples < 2 or batch_size < 1:
            raise InvalidValue(f"num_samples must be >= 2 and batch_size >= 1, got {num_samples} and {batch_size}")
        if reference_split not in ("train", "val", "test"):
            raise InvalidValue(f"reference_split must be 'train', 'val' or 'test', got {reference_split!r}")
        super().__init__(every_n_iterations, at_end=evaluate_at_end)
        self.num_samples = num_samples
        self.metric_names = parse_metrics(metrics)
        self.extractor_spec, self.weights, self.extractor_sha256 = extractor, weights, extractor_sha256
        self.reference_split, self.num_real = reference_split, num_real
        self.batch_size, self.seed, self.prefix = batch_size, seed, prefix
        self.cache = StatisticsCache(cache_dir)
        self.metric_options = dict(
            is_splits=is_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, pr_k=pr_k
        )
        self.evaluator: Optional[GenerativeEvaluator] = None
        self.reference: Optional[ReferenceStatistics] = None
        self.reference_source: Optional[str] = None  # "computed", "cache" or "memory", for the record
        self.last_results: dict[str, float] = {}
        self.last_protocol: dict[str, Any] = {}
        self._protocol_logged = False

    # -- Lightning hooks ----------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Built here, before any training, so a missing weights file fails the run at once.
        if self.evaluator is None:
            extractor = build_extractor(self.extractor_spec, self.weights, self.extractor_sha256)
            self.evaluator = GenerativeEvaluator(extractor, self.metric_names, **self.metric_options)
        self.reference = None  # another fit may bring another datamodule (the disk cache still serves)

    def is_due(self, trainer: pl.Trainer, pl_module: Any, batch_idx: int) -> bool:
        # Periodic, or the last batch of the run: evaluated while self.log still works.
        final = self.at_end and _budget_reached(trainer, pl_module, batch_idx)
        return final or super().is_due(trainer, pl_module, batch_idx)

    def fire(self, trainer: pl.Trainer, pl_module: Any, at_end: bool) -> None:
        if at_end:
            # A stop not foreseen at the last batch (EarlyStopping at a validation, say); not a
            # preemption, after which the run continues. Lightning forbids self.log in this hook:
            # the values go to callback_metrics directly.
            if not _preempted(trainer):
                trainer.callback_metrics.update({k: torch.tensor(v) for k, v in self.evaluate(trainer, pl_module).items()})
            return
        if _preemption_pending(trainer):
            # The grace period before the kill is for saving the checkpoint, not for sampling.
            rank_zero_info(f"GenerativeMetrics: no evaluation at iteration {pl_module.iteration}: job being preempted")
            self.last_iteration = None  # not evaluated: a later batch of this iteration may still do it
            return
        values = self.evaluate(trainer, pl_module)
        # In callback_metrics (ModelCheckpoint monitor, progress bar); the loggers get the values
        # in `evaluate`, on the iteration axis, whatever log_every_n_steps is.
        pl_module.log_dict(values, on_step=True, on_epoch=False, logger=False, batch_size=1)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        """Sample, score and log now (on every rank); returns ``{"val/fid_inception": ..., ...}``."""
        if self.evaluator is None:
            self.setup(trainer, pl_module, "fit")
        evaluator = self.evaluator.to(pl_module.device)
        started = time.perf_counter()
        if evaluator.needs_reference and self.reference is None:
            self.reference = self._load_or_compute_reference(trainer, evaluator)
            evaluator.set_reference(self.reference)  # buffers: they follow the evaluator's device
        elif evaluator.needs_reference:
            self.reference_source = "memory"
        evaluator.reset()
        rank, world = trainer.global_rank, trainer.world_size
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed + rank)
        evaluator.sample_from(pl_module, sample_shares(self.num_samples, world)[rank], self.batch_size, generator)
        values = {f"{self.prefix}/{k}": v for k, v in evaluator.compute().items()}
        evaluator.reset()  # generated features are not kept between evaluations
        self.last_results, self.last_iteration = values, pl_module.iteration
        self.last_protocol = self._protocol(trainer, pl_module, time.perf_counter() - started)
        self._log(trainer, values)
        return values

    def _load_or_compute_reference(self, trainer: pl.Trainer, evaluator: GenerativeEvaluator) -> ReferenceStatistics:
        """Real statistics from the disk cache, else computed by all ranks together (and cached)."""
        datamodule = trainer.datamodule
        if datamodule is None:
            raise InvalidValue("GenerativeMetrics needs the trainer's datamodule for real images (fit with datamodule=)")
        images = ReferenceImages(datamodule, self.reference_split, self.num_real)
        key = reference_key(images, evaluator.extractor, evaluator.needs_reference_features)
        cached = self.cache.load(key, need_features=evaluator.needs_reference_features)
        # Collective decision: if any rank misses the file (node-local caches), all compute together.
        if trainer.strategy.reduce_boolean_decision(cached is None, all=False):
            cached = compute_reference(
                evaluator.extractor, images, key, self.batch_size, trainer.global_rank, trainer.world_size
            )
            if trainer.is_global_zero:
                self.cache.save(cached)
            self.reference_source = "computed"
        else:
            self.reference_source = "cache"
        return cached

    # -- record -------------------------------------------------------------------------------
    def _protocol(self, trainer: pl.Trainer, pl_module: Any, seconds: float) -> dict[str, Any]:
        reference = None
        if self.reference is not None:
            key = self.reference.key
            reference = {
                "dataset": key["dataset"],
                "split": key["split"],
                "num_images": self.reference.n,
                "images_sha256": key["images_sha256"],
                "source": self.reference_source,
            }
        return {
            **self.evaluator.protocol(),
            "num_samples": self.num_samples,
            "sample_seed": self.seed,
            "world_size": trainer.world_size,
            "image_shape": list(pl_module.image_shape),
            "reference": reference,
            "iteration": int(pl_module.iteration),
            "seconds": round(seconds, 3),
        }

    def _log(self, trainer: pl.Trainer, values: dict[str, float]) -> None:
        if not trainer.is_global_zero:
            return
        iteration = self.last_iteration
        if not self._protocol_logged:
            static = {k: v for k, v in self.last_protocol.items() if k not in ("iteration", "seconds")}
            for logger in trainer.loggers:
                logger.log_hyperparams({"generative_metrics": static})
            self._protocol_logged = True
        for logger in trainer.loggers:
            logger.log_metrics({**values, "iteration": float(iteration)}, step=trainer.global_step)
        record = {"iteration": iteration, "values": values, "protocol": self.last_protocol}
        path = Path(trainer.default_root_dir) / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def _preempted(trainer: pl.Trainer) -> bool:
    return any(isinstance(cb, Preemption) and cb.preempted_at is not None for cb in trainer.callbacks)


def _preemption_pending(trainer: pl.Trainer) -> bool:
    """A preemption signal reached some rank (agreed across ranks: all evaluate or none does)."""
    signalled = any(isinstance(cb, Preemption) and cb.received is not None for cb in trainer.callbacks)
    pending = signalled or _preempted(trainer)
    return trainer.strategy.reduce_boolean_decision(pending, all=False)


def _budget_reached(trainer: pl.Trainer, pl_module: Any, batch_idx: int) -> bool:
    """Whether training ends after the current batch (iteration budget, max_steps, max_epochs, stop)."""
    if trainer.should_stop:
        return True
    if any(isinstance(cb, StopAtIteration) and pl_module.iteration >= cb.max_iterations for cb in trainer.callbacks):
        return True
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return True
    last_epoch = trainer.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= trainer.max_epochs
    return last_epoch and batch_idx + 1 >= trainer.num_training_batches
