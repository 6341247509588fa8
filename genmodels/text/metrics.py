"""How well generated images follow their captions.

- `r_precision` (Xu et al. 2018, arXiv:1711.10485, Sec. 5.1): for each generated image, its true
  caption and 99 mismatched captions are ranked by cosine similarity between the DAMSM global
  image feature and the sentence feature; R-precision is the share of images whose true caption
  ranks first (top-1, R = 1). With fewer than 100 distinct captions available the pool is all
  other captions (``candidates`` says how many were used; chance is 1 / candidates).
  Mismatched captions are drawn among captions that differ from the true one as text.
- `r_precision_other_classes`: the protocol behind the published CUB/COCO R-precision since
  DM-GAN (MinfengZhu/DM-GAN code/trainer.py ``sampling``, datasets.py ``get_mis_caption``): the 99
  mismatched captions are drawn (independently, with replacement) among the captions of test
  images of **other classes**, the true caption wins when its cosine similarity is the largest
  (``argmax == 0``), and 30,000 generated images give a mean and standard deviation over 10
  folds of 3,000 (`fold_statistics`; the authors' slices drop each fold's last element).
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

__all__ = ["r_precision", "r_precision_scores", "r_precision_other_classes", "fold_statistics", "shape_colour_accuracy", "image_colours"]


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


def r_precision_other_classes(image_features: Tensor, sentence_features: Tensor, classes: Tensor,
                              pool_features: Tensor, pool_classes: Tensor, mismatched: int = 99,
                              generator: Optional[torch.Generator] = None) -> Tensor:
    """Per-image hits (bool, (N,)): the true caption's cosine similarity is the largest among it and
    ``mismatched`` captions drawn with replacement from ``pool_features`` rows of another class.

    Args:
        image_features, sentence_features: (N, D) global features of the generated images and of
            the captions they were generated from; ``classes`` (N,) their images' classes.
        pool_features, pool_classes: (M, D) sentence features of every test caption, (M,) classes.
    """
    hits = torch.zeros(image_features.shape[0], dtype=torch.bool)
    for i in range(image_features.shape[0]):
        others = (pool_classes != classes[i]).nonzero().flatten()
        if len(others) == 0:
            raise InvalidValue("R-precision with other-class captions needs captions of at least two classes")
        chosen = others[torch.randint(len(others), (mismatched,), generator=generator)]
        candidates = torch.cat([sentence_features[i : i + 1], pool_features[chosen]])
        scores = F.cosine_similarity(image_features[i : i + 1], candidates, dim=1, eps=1e-8)
        hits[i] = int(scores.argmax()) == 0
    return hits


def fold_statistics(hits: Tensor, folds: int = 10, generator: Optional[torch.Generator] = None) -> tuple[float, float]:
    """Mean and (population) standard deviation of the hit rate over ``folds`` equal folds of the
    shuffled hits (DM-GAN: 10 folds of 3,000 of 30,000)."""
    size = len(hits) // folds
    if size < 1:
        raise InvalidValue(f"{len(hits)} images cannot make {folds} folds")
    shuffled = hits[torch.randperm(len(hits), generator=generator)].float()
    rates = shuffled[: size * folds].view(folds, size).mean(1)
    return float(rates.mean()), float(rates.std(unbiased=False))


@torch.no_grad()
def _features(model: Any, damsm: Any, captions: Sequence[str], seed: int, batch_size: int) -> tuple[Tensor, Tensor]:
    """DAMSM global features of images generated from ``captions`` and of the captions themselves."""
    image_features, sentence_features = [], []
    for start in range(0, len(captions), batch_size):
        part = list(captions[start : start + batch_size])
        images = model.sample(len(part), condition=part, generator=torch.Generator(model.device).manual_seed(seed + start))
        _, global_ = damsm.image_encoder(images)
        image_features.append(global_.float().cpu())
        sentence_features.append(_sentences(model, damsm, part))
    return torch.cat(image_features), torch.cat(sentence_features)


@torch.no_grad()
def _sentences(model: Any, damsm: Any, captions: Sequence[str]) -> Tensor:
    encoded = damsm_vocabulary(damsm).encode(list(captions), model.max_length if isinstance(model, TextConditional) else 18)
    _, sentence = damsm.text_encoder(encoded.tokens.to(model.device), encoded.lengths.to(model.device))
    return sentence.float().cpu()


@torch.no_grad()
def r_precision(model: Any, damsm: Any, captions: Sequence[str], seed: int = 0, batch_size: int = 50,
                mismatched: int = 99, classes: Optional[Sequence[int]] = None,
                pool: Optional[tuple[Sequence[str], Sequence[int]]] = None, folds: int = 10) -> dict[str, float]:
    """R-precision of ``model`` on ``captions`` with a DAMSM's encoders (see the module docstring).

    With ``classes`` (one per caption) and ``pool`` (every test caption and its class), the common
    protocol (`r_precision_other_classes`, mean and std over ``folds``); without, mismatched
    captions are other distinct captions among ``captions`` (`r_precision_scores`).
    Returns ``{"r_precision": share, "r_precision_std": ..., "candidates": ..., "n": ...}``.
    """
    generator = torch.Generator().manual_seed(seed)
    damsm = damsm.to(model.device).eval()
    image_features, sentence_features = _features(model, damsm, captions, seed, batch_size)
    if classes is None or pool is None:
        hits, candidates = r_precision_scores(image_features, sentence_features, list(captions), mismatched, generator)
        return {"r_precision": hits.float().mean().item(), "r_precision_std": 0.0, "candidates": float(candidates),
                "n": float(len(captions))}
    pool_captions, pool_classes = pool
    pool_features = torch.cat([_sentences(model, damsm, pool_captions[i : i + 256]) for i in range(0, len(pool_captions), 256)])
    hits = r_precision_other_classes(image_features, sentence_features, torch.as_tensor(list(classes)), pool_features,
                                     torch.as_tensor(list(pool_classes)), mismatched, generator)
    mean, std = fold_statistics(hits, folds, generator) if len(hits) >= folds else (hits.float().mean().item(), 0.0)
    return {"r_precision": mean, "r_precision_std": std, "candidates": float(mismatched + 1), "n": float(len(captions))}


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
