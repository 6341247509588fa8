"""Text for text-to-image models: tokenization and vocabulary, DAMSM encoders, R-precision."""

from genmodels.text.vocabulary import PAD, UNK, EncodedText, TextError, Vocabulary, build_vocab, tokenize

__all__ = ["PAD", "UNK", "EncodedText", "TextError", "Vocabulary", "build_vocab", "tokenize"]
