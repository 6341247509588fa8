"""The images-seen clock: real images shown to D so far, and the EMA half-life that reads it.

The official StyleGAN loops measure time in images, not iterations: the growth schedule
(`genmodels.gans.growth`) and the EMA of G (``ema_kimg``: a half-life in thousands of images,
StyleGAN2-ADA's ``ema_rampup`` capping it at a fraction of the images seen) both read it. Models
that grow (ProGAN, StyleGAN) and one that does not (StyleGAN2) hold the same `ImageClock`, so
the clock is its own component rather than part of growth.
"""

from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor

from genmodels.compat import has_trainer
from genmodels.errors import InvalidValue

__all__ = ["ImageClock", "half_life_beta"]


def half_life_beta(images: int, ema_kimg: float, ema_rampup: Optional[float], images_seen: int) -> float:
    """EMA decay of one update of ``images`` images at a half-life of ``ema_kimg`` thousand images,
    capped at ``ema_rampup * images_seen`` (StyleGAN2-ADA training_loop.py; no cap when null)."""
    ema_images = ema_kimg * 1000
    if ema_rampup is not None:
        ema_images = min(ema_images, images_seen * ema_rampup)
    return 0.5 ** (images / max(ema_images, 1e-8))


class ImageClock:
    """Real images shown to D so far, over all ranks, kept in the host's ``images_seen`` buffer.

    The buffer sits at the top level of the host's state dict (the key checkpoints and exported
    generators have always used), so a resumed run and an exported generator continue from the
    same count. The clock also keeps a host-side copy, which is what it reads: a phase or an EMA
    decay is chosen without waiting on the GPU, and under torch.export.

    Args:
        host: the LightningModule whose state dict holds the count.
        ema_kimg: half-life of G's EMA in thousands of images (null: the host's constant decay).
        ema_rampup: cap the half-life at this fraction of the images seen (null: no cap).
    """

    def __init__(self, host: pl.LightningModule, ema_kimg: Optional[float] = None, ema_rampup: Optional[float] = None) -> None:
        if ema_kimg is not None and ema_kimg <= 0:
            raise InvalidValue(f"model option ema_kimg={ema_kimg!r} is invalid: must be positive or null")
        if ema_rampup is not None and ema_rampup <= 0:
            raise InvalidValue(f"model option ema_rampup={ema_rampup!r} is invalid: must be positive or null")
        self.host = host
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        host.register_buffer("images_seen", torch.zeros((), dtype=torch.int64))
        host.register_load_state_dict_post_hook(self._reread)
        self.count = 0
        # The count when the update in progress began: the EMA cap reads it (the clock advances
        # only once the update ends).
        self.update_start = 0

    def images_in(self, micro_batches: list[dict[str, Tensor]]) -> int:
        """Real images of one update, over all ranks."""
        world = self.host.trainer.world_size if has_trainer(self.host) else 1
        return world * sum(int(b["image"].shape[0]) for b in micro_batches)

    def begin_update(self) -> None:
        self.update_start = self.count

    def advance(self, images: int) -> None:
        self.host.images_seen += images
        self.count += images

    def ema_beta(self, micro_batches: list[dict[str, Tensor]], ema_decay: float) -> float:
        """The official EMA: a half-life of ``ema_kimg`` thousand images, else the constant ``ema_decay``."""
        if self.ema_kimg is None:
            return float(ema_decay)
        return half_life_beta(self.images_in(micro_batches), self.ema_kimg, self.ema_rampup, self.update_start)

    def _reread(self, host: pl.LightningModule, incompatible_keys: Any) -> None:
        # After load_state_dict (resume, apps) the host copy follows the loaded buffer.
        self.count = int(host.images_seen)
