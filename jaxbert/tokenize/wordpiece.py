"""WordPiece (BERT, ELECTRA, DistilBERT) on the `tokenizers` library, built like transformers' BertTokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from jaxbert.tokenize.base import TokenizerError
from jaxbert.tokenize.fast import FastTokenizer, special_ids

WORDPIECE_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
PREFIX = "##"


def read_vocab_txt(path: Path) -> dict[str, int]:
    """token -> id from a vocab.txt (one token a line, id = line number), as BERT's load_vocab reads it."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise TokenizerError(f"{path} is not UTF-8 ({e.reason} at byte {e.start}); re-save it as UTF-8") from e
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for index, token in enumerate(lines):
        # Like transformers' load_vocab: a repeated line keeps the last id (real vocabs never repeat).
        vocab[token.rstrip("\r")] = index
    if not vocab:
        raise TokenizerError(f"{path} is empty; a WordPiece vocab.txt has one token a line")
    return vocab


def _template(names: dict[str, str], cls_id: int, sep_id: int) -> processors.TemplateProcessing:
    cls, sep = names["cls"], names["sep"]
    return processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, cls_id), (sep, sep_id)],
    )


class WordPieceTokenizer(FastTokenizer):
    """BERT's tokenizer: BertNormalizer (clean text, CJK characters split, optional lowercase and
    accent stripping), BertPreTokenizer (whitespace and punctuation), WordPiece with "##" pieces.

    Build it with `from_vocab_file` (vocab.txt) or `from_tokenizer_json` (tokenizer.json).
    """

    kind = "wordpiece"

    @classmethod
    def from_vocab_file(
        cls,
        path: str | Path,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        names: dict[str, str] | None = None,
    ) -> WordPieceTokenizer:
        """From a vocab.txt; `strip_accents=None` follows `lowercase`, as in the original BERT."""
        path = Path(path)
        names = {**WORDPIECE_SPECIALS, **(names or {})}
        vocab = read_vocab_txt(path)
        if names["unk"] not in vocab:  # the WordPiece model itself needs it
            raise TokenizerError(f"{path}: the unk token {names['unk']!r} is not in the vocabulary")
        backend = tokenizers.Tokenizer(WordPiece(vocab, unk_token=names["unk"], max_input_chars_per_word=100))
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=lowercase,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix=PREFIX)
        special_ids(backend, names, str(path))  # all five must be in the vocabulary already
        # Special tokens typed in the text stay whole, as in transformers.
        backend.add_special_tokens(
            [tokenizers.AddedToken(names[r], special=True, normalized=False) for r in WORDPIECE_SPECIALS]
        )
        special = special_ids(backend, names, str(path))
        backend.post_processor = _template(names, special.cls, special.sep)
        return cls(backend, special, names)

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, names: dict[str, str] | None = None) -> WordPieceTokenizer:
        """From a transformers tokenizer.json whose model is WordPiece (its truncation/padding are dropped)."""
        path = Path(path)
        backend = tokenizers.Tokenizer.from_file(str(path))
        names = {**WORDPIECE_SPECIALS, **(names or {})}
        special = special_ids(backend, names, str(path))
        if backend.post_processor is None:
            backend.post_processor = _template(names, special.cls, special.sep)
        return cls(backend, special, names)

    def _normalizer_settings(self) -> dict[str, Any]:
        norm = json.loads(self._backend.to_str()).get("normalizer") or {}
        if norm.get("type") != "BertNormalizer":
            return {}
        return {
            "do_lower_case": bool(norm.get("lowercase", True)),
            "strip_accents": norm.get("strip_accents"),
            "tokenize_chinese_chars": bool(norm.get("handle_chinese_chars", True)),
        }

    def _word_rules(self, vocab: dict[str, int]) -> tuple[list[int], list[int]]:
        return [i for t, i in vocab.items() if t.startswith(PREFIX)], []

    def _reference_files(self, directory: Path) -> None:
        by_id = {i: t for t, i in self.get_vocab().items()}
        missing = [i for i in range(self.vocab_size) if i not in by_id]
        if missing:
            raise TokenizerError(
                f"WordPiece ids {missing[:5]} have no token, so vocab.txt (id = line number) cannot be written"
            )
        text = "".join(by_id[i] + "\n" for i in range(self.vocab_size))
        (directory / "vocab.txt").write_text(text, encoding="utf-8")

    def _config(self) -> dict[str, Any]:
        return {"tokenizer_class": "BertTokenizer", **self._normalizer_settings()}
