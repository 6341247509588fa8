"""Tokenization and vocabulary: AttnGAN's word rule, <pad>/<unk>, truncation, empty captions."""

import pytest

from genmodels.text.vocabulary import TextError, Vocabulary, build_vocab, tokenize


def test_tokenize_lowercases_and_keeps_word_runs():
    assert tokenize("This bird's wings are RED, and black.") == ["this", "bird", "s", "wings", "are", "red", "and", "black"]
    assert tokenize("naïve café") == ["nave", "caf"]  # non-ASCII dropped, as in AttnGAN


def test_build_vocab_orders_words_and_applies_min_count():
    vocab = build_vocab(["a red bird", "a blue bird", "a bird"], min_count=2)
    assert vocab == ["<pad>", "<unk>", "a", "bird"]


def test_encode_unknown_words_truncation_and_padding():
    vocab = Vocabulary(build_vocab(["a red bird with black wings"]))
    encoded = vocab.encode(["a green bird", "a red bird with black wings"], max_length=4)
    assert encoded.unknown == ["green"]
    assert encoded.truncated == [1]
    assert encoded.lengths.tolist() == [3, 4]
    assert encoded.tokens[0].tolist() == [vocab.index["a"], 1, vocab.index["bird"], 0]


@pytest.mark.parametrize("text", ["", "   ", "!!! ..."])
def test_a_caption_without_words_is_an_error(text):
    vocab = Vocabulary(build_vocab(["a bird"]))
    with pytest.raises(TextError, match="holds no word"):
        vocab.encode([text])


def test_a_malformed_vocabulary_is_refused():
    with pytest.raises(TextError, match="<pad>"):
        Vocabulary(["a", "b", "c"])
