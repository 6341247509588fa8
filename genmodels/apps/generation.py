"""Generation shared by the commands, the HTTP API and the Streamlit app.

Images are a deterministic function of (checkpoint, seed, n, condition, truncation): the seed
seeds a generator on the model's device, the latent codes of all ``n`` images are drawn first and
then decoded in batches (BatchNorm runs in eval mode, so batching does not change an image).
Models with a latent space (`genmodels.apps.latent`) are decoded from their codes, which gives
the same images as ``model.sample`` for the same seed (and the same labels); other models are
sampled through ``sample(n, condition=..., generator=...)``, batch after batch from one generator.

Conditions: an int (every image of that class), a sequence of ints (cycled over the images),
``"all"`` (classes 0, 1, ..., K-1, 0, ... so a grid shows each) or ``None``, which means nothing
for an unconditional model and ``"all"`` for a conditional one. A model is conditional when it
has a positive ``num_classes`` attribute.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from PIL import Image
from torch import Tensor

from genmodels.apps.latent import LatentSpace, latent_space, seeded_generator
from genmodels.images import save_gif as write_gif
from genmodels.images import to_uint8, uint8_grid
from genmodels.protocols import TextConditional, class_count
from genmodels.errors import InvalidValue

__all__ = [
    "Condition",
    "num_classes",
    "condition_labels",
    "generate",
    "decode_codes",
    "interpolation_frames",
    "png_bytes",
    "grid_png",
    "image_pngs",
    "save_gif",
    "require_latent_space",
]

Condition = Union[None, int, str, Sequence[int], Tensor]


def num_classes(model: Any) -> int:
    """Number of classes a model is conditioned on (0: unconditional)."""
    return class_count(model)


def condition_labels(model: Any, condition: Condition, n: int) -> Optional[Tensor]:
    """Per-image class labels (n,) int64 on the model's device (None for an unconditional model).

    No condition for a conditional model means ``"all"``: classes 0, 1, ..., K-1, 0, ...

    Raises:
        ValueError: a condition for an unconditional model, or a label outside 0..K-1.
    """
    classes = num_classes(model)
    if condition is None:
        # A conditional model left to choose would draw its classes at random; cycling them
        # keeps images a function of the seed and shows every class in a grid.
        return None if classes == 0 else (torch.arange(n) % classes).to(model.device)
    if classes == 0:
        raise InvalidValue(f"{type(model).__name__} is unconditional: it takes no class condition")
    if isinstance(condition, str):
        if condition != "all":
            raise InvalidValue(f"condition must be class labels or 'all', got {condition!r}")
        labels = torch.arange(n) % classes
    else:
        values = torch.as_tensor(condition).long().reshape(-1)
        if values.numel() == 0:
            raise InvalidValue("condition holds no class label")
        labels = values.repeat((n + values.numel() - 1) // values.numel())[:n]
    unknown = sorted({int(v) for v in labels.tolist() if not 0 <= v < classes})
    if unknown:
        raise InvalidValue(f"unknown class {unknown[0]}: {type(model).__name__} knows classes 0..{classes - 1}")
    return labels.to(model.device)


def require_latent_space(model: Any, what: str) -> LatentSpace:
    """The model's latent space, or a ValueError saying that ``what`` needs one."""
    space = latent_space(model)
    if space is None:
        raise InvalidValue(
            f"{what} needs a latent space, and {type(model).__name__} exposes none "
            "(hooks: sample_latent + sample, mapping + synthesis, or decode + latent_gaussian)"
        )
    return space


@torch.no_grad()
def generate(
    model: Any,
    n: int,
    seed: int = 0,
    condition: Condition = None,
    truncation: Optional[float] = None,
    batch_size: int = 64,
) -> Tensor:
    """``n`` images (n, C, H, W) in [-1, 1] on the CPU, deterministic for the arguments."""
    if n < 1:
        raise InvalidValue(f"n must be >= 1, got {n}")
    labels = condition_labels(model, condition, n)
    space = latent_space(model)
    if space is not None:
        codes = space.codes(n, seed, labels, truncation)
        return decode_codes(space, codes, labels, batch_size)
    if truncation is not None:
        require_latent_space(model, "truncation")
    generator = seeded_generator(seed, model.device)
    chunks = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        part = None if labels is None else labels[start : start + count]
        chunks.append(model.sample(count, condition=part, generator=generator).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def decode_codes(space: LatentSpace, codes: Tensor, labels: Optional[Tensor] = None, batch_size: int = 64) -> Tensor:
    """Decode ``codes`` in batches; images on the CPU."""
    chunks = []
    for start in range(0, codes.shape[0], batch_size):
        part = None if labels is None else labels[start : start + batch_size]
        chunks.append(space.decode(codes[start : start + batch_size], part).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def interpolation_frames(
    model: Any,
    seed_a: int,
    seed_b: int,
    steps: int,
    n: int = 1,
    condition: Condition = None,
    truncation: Optional[float] = None,
) -> Tensor:
    """Images along the path from seed A's codes to seed B's: ``(steps, n, C, H, W)``.

    Path ``k`` joins code ``k`` of each seed, spherically in Z and linearly in W; both ends equal
    `generate` for that seed.
    """
    if steps < 2:
        raise InvalidValue(f"steps must be >= 2, got {steps}")
    space = require_latent_space(model, "interpolation")
    labels = condition_labels(model, condition, n)
    start = space.codes(n, seed_a, labels, truncation)
    end = space.codes(n, seed_b, labels, truncation)
    ts = torch.linspace(0, 1, steps).tolist()
    path = torch.cat([space.interpolate(start, end, t) for t in ts])
    frame_labels = None if labels is None else labels.repeat(steps)
    return decode_codes(space, path, frame_labels).view(steps, n, *model.image_shape)


# ---------------------------------------------------------------------------------------------
# Image files


def _pil(pixels: Tensor) -> Image.Image:
    """uint8 (C, H, W) with C = 1 or 3 -> a greyscale or RGB PIL image."""
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def png_bytes(pixels: Tensor, scale: int = 1) -> bytes:
    """A uint8 (C, H, W) image or grid as PNG bytes, optionally enlarged ``scale`` times (nearest neighbour)."""
    image = _pil(pixels)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images: Tensor, nrow: Optional[int] = None, scale: int = 1) -> bytes:
    """Images in [-1, 1] -> one PNG grid (fixed [-1, 1] -> [0, 255] mapping)."""
    return png_bytes(uint8_grid(images, nrow=nrow), scale)


def image_pngs(images: Tensor) -> list[bytes]:
    """One PNG per image at the model's resolution (greyscale PNGs for one-channel images)."""
    return [png_bytes(image) for image in to_uint8(images).cpu()]


def save_gif(frames: Tensor, path: Union[str, Path], nrow: Optional[int] = None, duration_ms: int = 100) -> Path:
    """Frames ``(steps, n, C, H, W)`` in [-1, 1] -> a looping GIF of grids (`genmodels.images.save_gif`)."""
    return write_gif(frames, path, nrow, duration_ms)


# ---------------------------------------------------------------------------------------------
# Text-to-image models (`genmodels.gans.text_to_image`): captions instead of class labels


def is_text_model(model: Any) -> bool:
    """Whether ``model`` is conditioned on captions (it has a vocabulary and a tokenizer)."""
    return isinstance(model, TextConditional)


@torch.no_grad()
def generate_from_text(model: Any, texts: Sequence[str], per_caption: int, seed: int = 0, batch_size: int = 64) -> Tensor:
    """``per_caption`` images for each caption, caption after caption: (len(texts) * per_caption, C, H, W) on the CPU.

    Words outside the vocabulary become ``<unk>`` and captions over the model's ``max_length`` words
    keep their first words (both with a warning, from the model); a caption without any word, or a
    model that takes no text, raises a ValueError.
    """
    if not is_text_model(model):
        raise InvalidValue(f"{type(model).__name__} is not a text-to-image model: --text needs StackGAN, DFGAN, ...")
    texts = [str(t) for t in texts]
    if not texts or any(not t.strip() for t in texts):
        raise InvalidValue("--text got an empty caption; give a sentence such as 'a small red bird with black wings'")
    model.tokenize(texts)  # validates once (unknown words, length) before any image is drawn
    captions = [t for t in texts for _ in range(per_caption)]
    generator = seeded_generator(seed, model.device)
    chunks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already reported by the check above
        for start in range(0, len(captions), batch_size):
            part = captions[start : start + batch_size]
            chunks.append(model.sample(len(part), condition=part, generator=generator).float().cpu())
    return torch.cat(chunks)
