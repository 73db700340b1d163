"""Tokenizers: one protocol (base.Tokenizer), WordPiece / byte-level BPE on `tokenizers`, SentencePiece."""

from jaxbert.tokenize.base import SpecialTokens, Tokenizer

__all__ = ["SpecialTokens", "Tokenizer"]
