"""Corpus lines → tokenized sentences, with a per-token word-start mask where a segmenter gives the words.

The rule for a token's word start, whatever the tokenizer:
  * a token the vocabulary marks as a continuation (WordPiece `##`, a SentencePiece piece without `▁`)
    continues its word: English (and every non-CJK) word keeps the vocabulary's rule;
  * a token whose first character is a CJK ideograph starts a word only where the segmenter starts one,
    so all the characters of a Chinese word (and the Latin or digit pieces the segmenter put in it, as in
    "T恤" or "１９９８年") form one word for masking;
  * every other token starts a word.
This is what transformers' run_chinese_ref.py marks with its reference files (Chinese characters inside a
segmenter's word become `##` pieces), computed once here and stored with the dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxbert.data.segmenters import SegmentedLine, Segmenter, is_cjk_char
from jaxbert.data.sentences import sentence_spans
from jaxbert.tokenize.base import Tokenizer


@dataclasses.dataclass
class TokenizedSentence:
    ids: list[int]
    word_starts: np.ndarray | None  # bool [len(ids)], None where no segmenter gave words


def token_word_starts(text: str, char_starts: Sequence[int], offsets: Sequence[tuple[int, int]],
                      vocab_starts: np.ndarray) -> np.ndarray:
    """bool [T]: which tokens of `text` begin a word (see the module docstring for the rule)."""
    at_word = set(char_starts)
    out = np.asarray(vocab_starts, bool).copy()
    for i, (lo, hi) in enumerate(offsets):
        while lo < hi and text[lo].isspace():  # a "▁word" or "Ġword" span may start on the space
            lo += 1
        if out[i] and lo < hi and is_cjk_char(text[lo]):
            out[i] = lo in at_word
    return out


def split_line(line: str, segmenter: Segmenter | None, sentence_split: str) -> list[SegmentedLine]:
    """The sentences of one corpus line, each with its words' character starts (empty without a segmenter)."""
    segmented = segmenter.segment(line) if segmenter is not None else SegmentedLine(line, ())
    if sentence_split == "lines":
        return [segmented]
    text, starts = segmented.text, np.asarray(segmented.word_starts, np.int64)
    out = []
    for lo, hi in sentence_spans(text):
        inside = starts[(starts >= lo) & (starts < hi)] - lo
        out.append(SegmentedLine(text[lo:hi], tuple(int(s) for s in inside)))
    return out


def tokenize_lines(lines: Sequence[str], tokenizer: Tokenizer, segmenter: Segmenter | None,
                   sentence_split: str) -> list[list[TokenizedSentence]]:
    """For each line, its sentences' token ids (no special tokens) and, with a segmenter, their word starts."""
    per_line = [split_line(line, segmenter, sentence_split) for line in lines]
    if segmenter is None:
        flat = [s.text for sentences in per_line for s in sentences]
        ids = tokenizer.encode_batch(flat, add_special_tokens=False) if flat else []
        it = iter(ids)
        return [[TokenizedSentence(next(it), None) for _ in sentences] for sentences in per_line]
    out = []
    for sentences in per_line:
        row = []
        for s in sentences:
            ids, offsets = tokenizer.encode_with_offsets(s.text)
            vocab = tokenizer.word_starts(np.asarray(ids, np.int64)) if ids else np.zeros(0, bool)
            row.append(TokenizedSentence(list(ids), token_word_starts(s.text, s.word_starts, offsets, vocab)))
        out.append(row)
    return out
