"""What Pix2Pix and CycleGAN share: translation as sampling, example sources, evaluation.

The `GenerativeModel.sample` contract for translation models: ``condition`` is the batch of
source images, float ``(n, C, H, W)`` (or one ``(C, H, W)`` image, repeated ``n`` times) in
[-1, 1], and ``sample(n, condition=A)`` returns their translations G(A), ``(n, C, H, W)`` in
[-1, 1]. ``generator`` seeds the model's noise (pix2pix's dropout) without touching the global RNG.

``condition=None`` translates the model's *example sources*: the first ``num_examples``
validation sources, taken from the datamodule when fitting starts and saved in checkpoints (so
`SampleGrid`, ``genmodels sample`` and any code written for unconditional models keep working, on
images the model has not trained on). A model that has never seen data (freshly built) has none,
and translates uniform noise images drawn with ``generator`` instead, only to keep shapes valid.

Evaluation (`validation_step`, `test_step`): the translation of every val source, compared with
its target: ``val/l1`` (paired data; mean absolute error in [-1, 1] units), ``val/psnr`` and
``val/ssim`` (torchmetrics, data range 2) where the pairs are aligned, and with ``fid_extractor``
set (``inception`` or ``classifier:PATH``, see `genmodels.metrics.extractors`) the FID of the
translations against the target-domain images of the same split (``val/fid_<extractor>``), with
the project's float64 `FrechetDistance`. Translations are drawn with a seeded generator per batch,
so the numbers do not move the training RNG.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch
from torch import Tensor

from genmodels.compat import register_load_state_dict_pre_hook
from genmodels.gans.adversarial import AdversarialModel
from genmodels.conditioning import ConditionError
from genmodels.metrics.modular import FrechetDistance
from genmodels.errors import InvalidValue

__all__ = ["TranslationModel", "seeded_noise", "d_loss_scale", "g_loss_scale"]


def d_loss_scale(loss: str) -> float:
    """The papers divide D's objective by 2; `losses.d_loss_least_squares` already carries the 1/2."""
    return 1.0 if loss == "least_squares" else 0.5


def g_loss_scale(loss: str) -> float:
    """G minimizes E[(D(G(x)) - 1)^2] (CycleGAN Sec. 4); `losses.g_loss_least_squares` is half of it."""
    return 2.0 if loss == "least_squares" else 1.0


@contextmanager
def seeded_noise(generator: Optional[torch.Generator], device: torch.device) -> Iterator[None]:
    """Run the block on a global RNG seeded from ``generator`` and restore the global state after.

    Dropout and other in-network noise draw from the global RNG; this makes them reproducible from
    an explicit generator and leaves the training stream untouched. No-op without a generator.
    """
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item())
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class TranslationModel(AdversarialModel):
    """An `AdversarialModel` whose generator maps source images (``batch["A"]``) to targets.

    Args:
        image_shape: ``(C, H, W)`` of the target images; linked from the datamodule.
        num_examples: validation sources kept as example sources (see the module docstring).
        fid_extractor: ``inception``, ``classifier:PATH`` or null (no FID in validation).
        fid_weights: Inception weights file (else ``$GENMODELS_INCEPTION_WEIGHTS``).
        **kwargs: training options of `AdversarialModel`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        num_examples: int = 8,
        fid_extractor: Optional[str] = None,
        fid_weights: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_shape, **kwargs)
        if num_examples < 0:
            raise InvalidValue(f"num_examples must be >= 0, got {num_examples}")
        self.num_examples, self.fid_extractor, self.fid_weights = num_examples, fid_extractor, fid_weights
        # Resized to the checkpoint's count on load (a fresh model holds none).
        self.register_buffer("example_sources", torch.empty(0, *self.image_shape))
        register_load_state_dict_pre_hook(self, self._fit_example_buffer)
        self._fid: dict[str, Any] = {}  # extractor and metric: not submodules, so never in checkpoints

    # -- to implement -------------------------------------------------------------------------
    def translate(self, source: Tensor, direction: str = "AtoB") -> Tensor:
        """The sampling generator's translation of ``source`` (n, C, H, W) in [-1, 1]."""
        raise NotImplementedError

    def grid_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """Columns of the translation grid for a batch of pairs: A | G(A) | B by default."""
        return [batch["A"], self.translate(batch["A"]), batch["B"]]

    #: Whether `translate` also goes from B to A (CycleGAN's F).
    bidirectional = False

    @property
    def input_multiple(self) -> int:
        """Input heights and widths must be multiples of this (the generator's total stride)."""
        raise NotImplementedError

    def source_channels_of(self, direction: str = "AtoB") -> int:
        """Channels of the images `translate` takes in ``direction``."""
        return self._source_channels()

    def paired_metrics(self) -> bool:
        """Whether val targets are aligned with their sources (L1 / PSNR / SSIM make sense)."""
        return True

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Translations of ``condition`` (source images), see the module docstring."""
        sources = self._examples(n, generator) if condition is None else self._check_sources(condition, n)
        with seeded_noise(generator, self.device):
            return self.translate(sources)

    def _check_sources(self, condition: Any, n: int) -> Tensor:
        if not isinstance(condition, Tensor) or not condition.is_floating_point():
            raise ConditionError(
                f"{type(self).__name__} translates images: condition must be a float tensor of source images "
                f"(n, C, H, W) in [-1, 1], got {type(condition).__name__}"
            )
        if condition.dim() == 3:
            condition = condition.unsqueeze(0).expand(n, -1, -1, -1)
        if condition.dim() != 4 or condition.shape[0] != n or condition.shape[1] != self._source_channels():
            raise ConditionError(
                f"condition must hold {n} source images ({n}, {self._source_channels()}, H, W), got shape {tuple(condition.shape)}"
            )
        return condition.to(self.device)

    def _examples(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        if len(self.example_sources) == 0:
            shape = (n, self._source_channels(), *self.image_shape[1:])
            device = generator.device if generator is not None else self.device
            return (torch.rand(shape, generator=generator, device=device) * 2 - 1).to(self.device)
        index = torch.arange(n, device=self.device) % len(self.example_sources)
        return self.example_sources.index_select(0, index)

    def _source_channels(self) -> int:
        return self.image_shape[0]

    def _fit_example_buffer(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        stored = state_dict.get(prefix + "example_sources")
        if stored is not None and stored.shape != self.example_sources.shape:
            self.example_sources = torch.empty_like(stored, device=self.example_sources.device)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = self.trainer.datamodule
        # getattr: fixed examples exist on translation datamodules only (genmodels never imports datamodules).
        if len(self.example_sources) == 0 and self.num_examples and callable(getattr(datamodule, "example_batch", None)):
            # Taken from the val split (never trained on), without touching the training RNG.
            with torch.random.fork_rng(devices=[]):
                self.example_sources = datamodule.example_batch(self.num_examples)["A"].to(self.device)

    # -- evaluation ---------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.fid_extractor and "metric" not in self._fid and stage in ("fit", "validate", "test"):
            from genmodels.metrics.extractors import build_extractor

            extractor = build_extractor(self.fid_extractor, self.fid_weights)  # fails fast without weights
            self._fid = {"extractor": extractor, "metric": FrechetDistance(extractor.num_features)}

    def evaluate_batch(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        generator = torch.Generator(device=self.device).manual_seed(self.val_seed + batch_idx)
        real = batch["B"]
        with seeded_noise(generator, self.device):
            fake = self.translate(batch["A"])
        logs = self.extra_metrics(batch, fake)
        if self.paired_metrics():
            from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

            fake32, real32 = fake.float(), real.float()
            logs["l1"] = (fake32 - real32).abs().mean()
            logs["psnr"] = peak_signal_noise_ratio(fake32, real32, data_range=2.0, reduction="none", dim=(1, 2, 3)).mean()
            logs["ssim"] = structural_similarity_index_measure(fake32, real32, data_range=2.0)
        self.log_dict({f"{stage}/{k}": v for k, v in logs.items()}, batch_size=real.shape[0], sync_dist=True)
        if self._fid:
            extractor, metric = self._fid_on_device()
            metric.update(extractor(real).features, real=True)
            metric.update(extractor(fake.clamp(-1, 1)).features)

    def extra_metrics(self, batch: dict[str, Tensor], fake: Tensor) -> dict[str, Tensor]:
        """Model-specific validation scalars (CycleGAN: cycle reconstruction error)."""
        return {}

    def _fid_on_device(self) -> tuple[Any, FrechetDistance]:
        self._fid["extractor"] = self._fid["extractor"].to(self.device)
        self._fid["metric"] = self._fid["metric"].to(self.device)
        return self._fid["extractor"], self._fid["metric"]

    def on_validation_epoch_end(self) -> None:
        self._log_fid("val")

    def on_test_epoch_end(self) -> None:
        self._log_fid("test")

    def _log_fid(self, stage: str) -> None:
        metric = self._fid.get("metric")
        if metric is None or int(metric.fake_n) < 2 or self.trainer.sanity_checking:
            if metric is not None:
                metric.reset()
            return
        value = metric.compute()
        metric.reset()
        self.log(f"{stage}/fid_{self._fid['extractor'].name}", value.float(), sync_dist=False)
