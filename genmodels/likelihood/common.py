"""What every likelihood model of this package shares: pixels, dequantization, bits/dim, squeeze.

Convention for every figure reported here: the data are discrete, 256 levels per sub-pixel, and
bits/dim is ``-log2 P(x) / (C*H*W)`` for the integer image ``x``, so 8 bits/dim is the uniform
distribution over pixel values. The batches carry ``image = pixel / 127.5 - 1`` in [-1, 1]; the
integer pixel is recovered exactly with `to_pixels`.

Discrete models (PixelCNN, the independent-pixel baseline) give ``P(x)`` directly. Flows model a
continuous density and are trained on uniformly dequantized data ``y = (x + u) / 256`` with
``u ~ U[0, 1)^D`` (Theis et al. 2016, arXiv:1511.01844, Sec. 3.1); then
``-log P(x) <= E_u[-log p(y)] + D log 256`` where the ``D log 256`` is the log-determinant of the
scaling from ``[0, 256)`` to ``[0, 1)`` (`flow_bits_per_dim`).

`LikelihoodModel` is the Lightning system they all share: the loss is the mean bits/dim of the
batch, logged as ``train/bits_per_dim`` and ``val/bits_per_dim``/``test/bits_per_dim``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from genmodels.base import GenerativeModel
from genmodels.errors import InvalidValue

__all__ = [
    "NUM_LEVELS",
    "LikelihoodModel",
    "to_pixels",
    "from_pixels",
    "dequantize",
    "quantize",
    "flow_bits_per_dim",
    "nats_to_bits_per_dim",
    "squeeze",
    "unsqueeze",
    "check_squeezable",
    "sample_categorical",
    "check_condition_free",
    "check_at_least_one",
    "check_temperature",
]

NUM_LEVELS = 256


# ---------------------------------------------------------------------------------------------
# Pixels and dequantization


def to_pixels(images: Tensor) -> Tensor:
    """Images in [-1, 1] (``pixel / 127.5 - 1``) -> the integer pixels, int64 in [0, 255]."""
    return ((images + 1) * 127.5).round().clamp(0, NUM_LEVELS - 1).long()


def from_pixels(pixels: Tensor) -> Tensor:
    """Integer pixels in [0, 255] -> float images in [-1, 1], the datamodules' mapping."""
    return pixels.float() / 127.5 - 1


def dequantize(images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """``y = (x + u) / 256`` in [0, 1) with ``u ~ U[0, 1)`` per sub-pixel, ``x`` the integer pixel."""
    noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (to_pixels(images).to(images.dtype) + noise) / NUM_LEVELS


def quantize(y: Tensor) -> Tensor:
    """Inverse of `dequantize` up to the noise: ``y`` in [0, 1) -> images in [-1, 1] on the pixel grid."""
    return from_pixels((y * NUM_LEVELS).floor().clamp(0, NUM_LEVELS - 1))


def nats_to_bits_per_dim(nll: Tensor, num_dims: int) -> Tensor:
    """Negative log-likelihood in nats per image -> bits per sub-pixel."""
    return nll / (num_dims * math.log(2))


def flow_bits_per_dim(log_density: Tensor, num_dims: int) -> Tensor:
    """Bits/dim of the discrete data from ``log p(y)`` of the dequantized ``y`` in [0, 1)^D.

    ``p(x + u) = p(y) / 256^D`` on ``[0, 256)^D`` (the scaling's log-determinant), so
    ``-log p(x + u) = -log p(y) + D log 256``, an upper bound on ``-log P(x)`` in expectation.
    """
    return nats_to_bits_per_dim(-log_density + num_dims * math.log(NUM_LEVELS), num_dims)


def sample_categorical(logits: Tensor, temperature: float, generator: Optional[torch.Generator]) -> Tensor:
    """One draw per row of ``logits`` (..., K) from ``softmax(logits / T)``; ``T = 0`` is the argmax.

    Inverse-CDF sampling with one uniform per row, so the same generator state always gives the
    same draws (the cached and the reference PixelCNN samplers are compared on that).
    """
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=cdf.device, dtype=cdf.dtype)
    # cdf[..., -1] can round to slightly below 1; clamp keeps the index in range.
    return torch.searchsorted(cdf, u * cdf[..., -1:]).squeeze(-1).clamp_max(logits.shape[-1] - 1)


# ---------------------------------------------------------------------------------------------
# Squeeze (RealNVP Sec. 3.6, Fig. 3; Glow Sec. 3)


def squeeze(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 block of a channel becomes four channels."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise InvalidValue(f"squeeze needs an even height and width, got {h}x{w}")
    x = x.view(b, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """Inverse of `squeeze`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    b, c4, h, w = x.shape
    c = c4 // 4
    x = x.view(b, c, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


def check_squeezable(image_shape: tuple[int, int, int], num_squeezes: int, model: str, option: str) -> None:
    """Raise a ValueError naming the fix unless H and W survive ``num_squeezes`` halvings."""
    _, h, w = image_shape
    factor = 2**num_squeezes
    if h % factor or w % factor:
        raise InvalidValue(
            f"{model} squeezes {num_squeezes} time(s), so the image height and width must be divisible by "
            f"{factor}; got {h}x{w}. Use data.init_args.image_size divisible by {factor}, or lower "
            f"model.init_args.{option}"
        )


# ---------------------------------------------------------------------------------------------


class LikelihoodModel(GenerativeModel):
    """A model trained by maximum likelihood: minimize the batch's mean bits/dim.

    Subclasses implement `bits_per_dim` (per image) and `draw` (what `sample` returns, after the
    temperature check, without gradients). Validation and test draw their
    dequantization noise from a generator seeded per batch, so evaluation never moves the
    training RNG (a resumed run stays equal to an uninterrupted one) and is repeatable.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        lr: Adam learning rate.
        weight_decay: L2 penalty on every parameter, added by Adam (0: none; RealNVP's own L2 is
            its ``l2_coefficient``).
        warmup_iterations: linear learning-rate warm-up from 0 over this many iterations
            (Glow and PixelCNN++ warm up; flows often diverge without it).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_iterations: int = 0,
    ) -> None:
        super().__init__(image_shape)
        checks = [("lr", lr, lr > 0, "positive"), ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
                  ("warmup_iterations", warmup_iterations, warmup_iterations >= 0, ">= 0")]
        for key, value, ok, allowed in checks:
            if not ok:
                raise InvalidValue(f"model option {key}={value!r} is invalid: must be {allowed}")
        self.lr, self.weight_decay, self.warmup_iterations = lr, weight_decay, warmup_iterations
        self._eval_seed = 1234

    @property
    def num_dims(self) -> int:
        """``C * H * W``: the dimension bits/dim divides by."""
        return math.prod(self.image_shape)

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """``-log2 P(x) / D`` per image of ``batch`` (B,); ``generator`` drives any dequantization."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None, temperature: float = 1.0
    ) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1] on the 256-level grid; ``temperature`` scales the
        spread of every draw (1: the model's distribution, < 1 sharper, 0 the mode where defined)."""
        check_temperature(temperature)
        return self.draw(n, condition, generator, temperature)

    def draw(self, n: int, condition: Any, generator: Optional[torch.Generator], temperature: float) -> Tensor:
        """The model's own sampling (the arguments of `sample`, temperature already checked)."""
        raise NotImplementedError

    # -- Lightning hooks ------------------------------------------------------------------------
    def regularization(self) -> Optional[Tensor]:
        """A penalty added to the training loss (in bits/dim units); none by default."""
        return None

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        bpd = self.bits_per_dim(batch).mean()
        logs = {"train/bits_per_dim": bpd.detach()}
        penalty = self.regularization()
        if penalty is not None:
            logs["train/regularization"] = penalty.detach()
        self.log_train(logs)
        return bpd if penalty is None else bpd + penalty

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        generator = torch.Generator(device=self.device).manual_seed(self._eval_seed + batch_idx)
        bpd = self.bits_per_dim(batch, generator=generator).mean()
        self.log_dict({f"{stage}/bits_per_dim": bpd}, batch_size=batch["image"].shape[0], sync_dist=True)

    def make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """Adam with the configured rate and L2; a model with another optimizer overrides this."""
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def configure_optimizers(self) -> Any:
        # Frozen copies (a Polyak average) are never optimized.
        optimizer = self.make_optimizer([p for p in self.parameters() if p.requires_grad])
        if self.warmup_iterations == 0:
            return optimizer
        warmup = self.warmup_iterations
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def check_condition_free(model: str, condition: Any) -> None:
    """Unconditional models refuse a condition rather than silently ignoring it."""
    if condition is not None:
        raise InvalidValue(f"{model} is unconditional: sample() takes no condition (got {type(condition).__name__})")


def check_at_least_one(**options: int) -> None:
    """Raise a ValueError naming the model option of any value below 1."""
    for key, value in options.items():
        if value < 1:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be >= 1")


def check_temperature(temperature: float) -> None:
    """Temperatures scale a distribution's spread; below 0 they mean nothing."""
    if temperature < 0:
        raise InvalidValue(f"temperature must be >= 0, got {temperature}")


