"""TemperatureGrid: samples at several temperatures, one row per temperature, saved and logged.

Likelihood models trade sample quality for diversity through a temperature ``T`` (Glow Sec. 5,
Fig. 8; for autoregressive models, each conditional raised to ``1/T``). The grid shows the same
number of samples per temperature, each row drawn with the same seed, so rows differ only by
``T`` (for the flows, row ``k`` is the same latent noise scaled by ``T_k``).

Like `SampleGrid`, sampling uses a dedicated seeded ``torch.Generator`` in eval mode, so it never
advances the training RNG and a resumed run stays equal to an uninterrupted one. The model must
accept ``sample(n, generator=..., temperature=...)`` (RealNVP, Glow, PixelCNN, IndependentPixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch

from genmodels.base import GenerativeModel
from genmodels.callbacks.base import ImageCallback, eval_mode
from genmodels.images import uint8_grid
from genmodels.errors import InvalidValue

__all__ = ["TemperatureGrid"]


class TemperatureGrid(ImageCallback):
    """Every ``every_n_iterations``, a grid of ``samples_per_temperature`` samples per temperature.

    Files: ``<default_root_dir>/<dirname>/temperatures_iter_XXXXXXXX.png``; logger key ``log_key``
    (plotted against ``iteration``), captioned with the temperatures top to bottom.

    Args:
        every_n_iterations: interval in model iterations; 0 writes only when training ends.
        temperatures: one grid row per value, top to bottom (each >= 0; 0 is the mode).
        samples_per_temperature: images per row.
        seed: seed of every row's generator.
        dirname: folder under the run directory.
        log_key: key of the image in the logger.
        on_train_end: also write a grid when training ends (if none was written at that iteration).
    """

    def __init__(
        self,
        every_n_iterations: int = 1000,
        temperatures: Sequence[float] = (0.5, 0.7, 0.85, 1.0),
        samples_per_temperature: int = 8,
        seed: int = 0,
        dirname: str = "samples",
        log_key: str = "samples_by_temperature",
        on_train_end: bool = True,
    ) -> None:
        if not temperatures or min(temperatures) < 0:
            raise InvalidValue(f"TemperatureGrid temperatures must be a non-empty list of values >= 0, got {temperatures}")
        if samples_per_temperature < 1:
            raise InvalidValue(f"TemperatureGrid samples_per_temperature must be >= 1, got {samples_per_temperature}")
        super().__init__(every_n_iterations, dirname, log_key, file_prefix="temperatures_", at_end=on_train_end)
        self.temperatures = [float(t) for t in temperatures]
        self.samples_per_temperature, self.seed = samples_per_temperature, seed

    def render(self, trainer: pl.Trainer, pl_module: Any, stem: Path) -> torch.Tensor:
        return uint8_grid(self.sample_rows(pl_module), nrow=self.samples_per_temperature)

    def caption(self, iteration: int) -> str:
        return f"iteration {iteration}, rows: T = {', '.join(f'{t:g}' for t in self.temperatures)}"

    @torch.no_grad()
    def sample_rows(self, pl_module: GenerativeModel) -> torch.Tensor:
        """(len(temperatures) * samples_per_temperature, C, H, W) in [-1, 1], row by row."""
        with eval_mode(pl_module):
            rows = []
            for temperature in self.temperatures:
                generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
                rows.append(pl_module.sample(self.samples_per_temperature, generator=generator, temperature=temperature))
            return torch.cat(rows)
