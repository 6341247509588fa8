"""How well generated images follow their captions.

- `r_precision` (Xu et al. 2018, arXiv:1711.10485, Sec. 5.1): for each generated image, its true
  caption and 99 mismatched captions are ranked by cosine similarity between the DAMSM global
  image feature and the sentence feature; R-precision is the share of images whose true caption
  ranks first (top-1, R = 1). With fewer than 100 distinct captions available the pool is all
  other captions (``candidates`` says how many were used; chance is 1 / candidates).
  Mismatched captions are drawn among captions that differ from the true one as text.
- `shape_colour_accuracy`: on the synthetic ``shapes`` set, the share of images whose colour (the
  nearest palette colour of the mean of the non-black pixels) is the colour named in the caption;
  chance is 1 / 4.

Inception score: the IS that StackGAN, AttnGAN and DF-GAN publish for CUB (and StackGAN for
Oxford-102) is computed with an Inception-v3 fine-tuned on the birds (flowers) classes, the
TensorFlow model of hanzhanggit/StackGAN-inception-model, on about 30k images from test captions.
``genmodels evaluate --metrics is`` reports ``is_inception``, the score of the ImageNet Inception-v3
extractor: another network and another scale, not comparable with those published values (see
docs/reproducing.md (Text-to-image)). FID uses ImageNet Inception features in both.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from genmodels.protocols import TextConditional
from genmodels.errors import InvalidValue

__all__ = ["r_precision", "r_precision_scores", "shape_colour_accuracy", "image_colours"]


def r_precision_scores(image_features: Tensor, sentence_features: Tensor, captions: Sequence[str],
                       mismatched: int = 99, generator: Optional[torch.Generator] = None) -> tuple[Tensor, int]:
    """Per-image hits (bool, (N,)) of top-1 retrieval among the true and ``mismatched`` other captions.

    Args:
        image_features: global image features of the generated images, (N, D).
        sentence_features: sentence features of their captions, (N, D) (row i is image i's caption).
        captions: the N caption texts (to exclude identical texts from the mismatched pool).
    Returns:
        (hits, number of candidates per query).
    """
    n = image_features.shape[0]
    distinct = {c: i for i, c in enumerate(captions)}
    pool = torch.tensor(sorted(distinct.values()))  # one index per distinct caption
    k = min(mismatched, len(pool) - 1)
    if k < 1:
        raise InvalidValue("R-precision needs at least two distinct captions")
    similarity = F.cosine_similarity(image_features[:, None, :], sentence_features[None, :, :], dim=2)  # (N, N)
    hits = torch.zeros(n, dtype=torch.bool)
    for i in range(n):
        others = pool[[captions[j] != captions[i] for j in pool.tolist()]]
        chosen = others[torch.randperm(len(others), generator=generator)[:k]]
        true = similarity[i, i]
        hits[i] = bool((similarity[i, chosen] < true).all())
    return hits, k + 1


@torch.no_grad()
def r_precision(model: Any, damsm: Any, captions: Sequence[str], seed: int = 0, batch_size: int = 50,
                mismatched: int = 99) -> dict[str, float]:
    """R-precision of ``model`` on ``captions`` with a DAMSM's encoders (see the module docstring).

    Returns ``{"r_precision": share, "candidates": ..., "n": ...}``.
    """
    generator = torch.Generator().manual_seed(seed)
    image_features, sentence_features = [], []
    damsm = damsm.to(model.device).eval()
    for start in range(0, len(captions), batch_size):
        part = list(captions[start : start + batch_size])
        images = model.sample(len(part), condition=part, generator=torch.Generator(model.device).manual_seed(seed + start))
        encoded = damsm_vocabulary(damsm).encode(part, model.max_length if isinstance(model, TextConditional) else 18)
        _, sentence = damsm.text_encoder(encoded.tokens.to(model.device), encoded.lengths.to(model.device))
        _, global_ = damsm.image_encoder(images)
        image_features.append(global_.float().cpu())
        sentence_features.append(sentence.float().cpu())
    hits, candidates = r_precision_scores(torch.cat(image_features), torch.cat(sentence_features), list(captions),
                                          mismatched, generator)
    return {"r_precision": hits.float().mean().item(), "candidates": float(candidates), "n": float(len(captions))}


def damsm_vocabulary(damsm: Any) -> Any:
    from genmodels.text.vocabulary import Vocabulary

    return Vocabulary(damsm.vocab)


def image_colours(images: Tensor, palette: dict[str, tuple[int, int, int]], threshold: float = 80.0) -> list[Optional[str]]:
    """Nearest palette colour of the mean non-black pixel of each image in [-1, 1]; None if all black."""
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).flatten(2)  # (N, 3, HW)
    names = list(palette)
    colours = torch.tensor([palette[c] for c in names], dtype=torch.float)
    result: list[Optional[str]] = []
    for image in pixels:
        foreground = image[:, image.amax(dim=0) > threshold]
        if foreground.shape[1] == 0:
            result.append(None)
            continue
        result.append(names[int((colours - foreground.mean(dim=1)).norm(dim=1).argmin())])
    return result


@torch.no_grad()
def shape_colour_accuracy(model: Any, palette: dict[str, tuple[int, int, int]], samples_per_colour: int = 25,
                          seed: int = 0, shape: str = "circle") -> float:
    """Share of images drawn for "a <colour> <shape>" whose colour is <colour>, over the palette's colours.

    ``palette`` is the data's colour names and RGB values (``datamodules.text_image.SHAPE_COLOURS``:
    4 colours, chance 0.25).
    """
    hits = 0
    for k, colour in enumerate(palette):
        generator = torch.Generator(model.device).manual_seed(seed + k)
        images = model.sample(samples_per_colour, condition=f"a {colour} {shape}", generator=generator)
        hits += sum(c == colour for c in image_colours(images.cpu(), palette))
    return hits / (samples_per_colour * len(palette))
