"""Captions to word indices, the way AttnGAN reads them (Xu et al. 2018, arXiv:1711.10485).

Tokenization: lowercase, then the words matched by the regex ``\\w+`` (AttnGAN uses NLTK's
``RegexpTokenizer(r'\\w+')``), so punctuation is dropped and "bird's" gives "bird", "s".
Non-ASCII characters are dropped after tokenizing, as in AttnGAN.

The vocabulary is a plain list of words (saved in checkpoints as such: loadable with
``weights_only=True``): index 0 is ``<pad>`` (padding after the end of a caption, AttnGAN's
``<end>``), index 1 is ``<unk>`` (a word outside the vocabulary), then the words of the training
captions seen at least ``min_count`` times, sorted alphabetically (so the indices do not depend
on the reading order).

Encoding a caption: words outside the vocabulary map to ``<unk>``; a caption longer than
``max_length`` words (18 in AttnGAN) keeps its first ``max_length`` words (AttnGAN instead keeps a
random ordered subset; the first words are reproducible and what a user typing a prompt expects);
an empty caption (no word at all) is an error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import Tensor

from genmodels.errors import InvalidValue

__all__ = ["PAD", "UNK", "tokenize", "build_vocab", "Vocabulary", "EncodedText", "TextError"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+")


class TextError(InvalidValue):
    """A caption that cannot be encoded (empty, no vocabulary, ...)."""


def tokenize(text: str) -> list[str]:
    """Lowercased ``\\w+`` words of ``text``, ASCII only (AttnGAN's tokenizer)."""
    words = (w.encode("ascii", "ignore").decode("ascii") for w in _WORD.findall(text.lower()))
    return [w for w in words if w]


def build_vocab(captions: Iterable[str], min_count: int = 1) -> list[str]:
    """``[<pad>, <unk>, words seen >= min_count times, sorted]`` from training captions."""
    if min_count < 1:
        raise InvalidValue(f"min_count must be >= 1, got {min_count}")
    counts = Counter(word for caption in captions for word in tokenize(caption))
    return [PAD, UNK] + sorted(w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK))


@dataclass
class EncodedText:
    """Padded word indices of a batch of captions and what encoding had to change."""

    tokens: Tensor  # long (B, max_length), 0 after the end
    lengths: Tensor  # long (B,), in [1, max_length]
    unknown: list[str]  # distinct words mapped to <unk>, in order of appearance
    truncated: list[int]  # indices of captions cut to max_length


class Vocabulary:
    """Word <-> index mapping over a vocabulary list (see the module docstring).

    Example:
        >>> vocab = Vocabulary(build_vocab(["A red circle.", "a blue square"]))
        >>> encoded = vocab.encode(["a red square!", "a green circle"], max_length=4)
        >>> encoded.tokens.tolist(), encoded.lengths.tolist(), encoded.unknown
        ([[2, 5, 6, 0], [2, 1, 4, 0]], [3, 3], ['green'])
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = [str(w) for w in words]
        if len(words) < 3 or words[0] != PAD or words[1] != UNK:
            raise TextError(f"a vocabulary is [{PAD!r}, {UNK!r}, words...], got {words[:5]}... ({len(words)} entries)")
        if len(set(words)) != len(words):
            raise TextError("the vocabulary lists a word twice")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, text: str) -> tuple[list[int], list[str]]:
        """Word indices of one caption and its out-of-vocabulary words."""
        words = tokenize(text)
        unknown = [w for w in words if w not in self.index]
        return [self.index.get(w, 1) for w in words], unknown

    def encode(self, texts: Sequence[str], max_length: int = 18) -> EncodedText:
        """Captions -> padded indices; raises `TextError` for a caption without any word."""
        if max_length < 1:
            raise TextError(f"max_length must be >= 1, got {max_length}")
        tokens = torch.zeros(len(texts), max_length, dtype=torch.long)
        lengths = torch.zeros(len(texts), dtype=torch.long)
        unknown: list[str] = []
        truncated: list[int] = []
        for row, text in enumerate(texts):
            ids, missing = self.ids(text)
            if not ids:
                raise TextError(f"caption {text!r} holds no word (words are runs of letters, digits or _)")
            if len(ids) > max_length:
                truncated.append(row)
                ids = ids[:max_length]
            tokens[row, : len(ids)] = torch.tensor(ids)
            lengths[row] = len(ids)
            unknown += [w for w in missing if w not in unknown]
        return EncodedText(tokens, lengths, unknown, truncated)

    def decode(self, tokens: Tensor, length: int) -> str:
        """Indices back to words (a caption as the model sees it)."""
        return " ".join(self.words[i] for i in tokens[:length].tolist())
