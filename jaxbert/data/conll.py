"""CoNLL-2003 named-entity data: reading, sub-token label alignment, and predictions back to words.

The file has one token a line with four space-separated columns (token, POS, chunk, NER),
blank lines between sentences and optional `-DOCSTART-` lines between documents. Tags are
IOB (IOB1 or IOB2). For a model, each word's tag goes on its first sub-token; its other
pieces, the special tokens and padding get IGNORE (-100), which losses and metrics skip.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError

IGNORE = -100
# The order of the Hugging Face `conll2003` dataset's ner_tags, which fine-tuned checkpoints use.
STANDARD_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


class ConllDataError(JaxbertError, ValueError):
    """A CoNLL file or tag is wrong; the message names the file and line, or the tag, and the fix."""


@dataclasses.dataclass(frozen=True)
class ConllSentence:
    """Words and their NER tags (and the POS / chunk columns, kept for completeness)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    pos: tuple[str, ...] = ()
    chunks: tuple[str, ...] = ()
    line: int = 0  # line of the first word in the file


def _check_tag(tag: str, where: str) -> None:
    if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
        raise ConllDataError(f"{where}: NER tag {tag!r} is not IOB (O, B-TYPE or I-TYPE); fix the 4th column")


def read_conll(path: str | Path, *, columns: int = 4) -> list[ConllSentence]:
    """Sentences of a CoNLL-2003 file (the last column is the NER tag).

    A line with the wrong number of columns or a non-IOB tag raises a ConllDataError naming
    the file and line.
    """
    path = storage.path(path)
    if not path.is_file():
        raise ConllDataError(f"CoNLL file {path} does not exist; pass a CoNLL-2003 train/valid/test file")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConllDataError(f"{path}, line {line}: not UTF-8 text; convert the file to UTF-8") from None
    sentences: list[ConllSentence] = []
    rows: list[list[str]] = []
    first_line = 0

    def flush() -> None:
        if rows:
            full = columns == 4
            sentences.append(ConllSentence(
                words=tuple(r[0] for r in rows), tags=tuple(r[-1] for r in rows),
                pos=tuple(r[1] for r in rows) if full else (), chunks=tuple(r[2] for r in rows) if full else (),
                line=first_line))
            rows.clear()

    for lineno, line in enumerate(lines, start=1):
        cells = line.split()
        if not cells:
            flush()
            continue
        if cells[0] == "-DOCSTART-":
            flush()
            continue
        where = f"{path}, line {lineno}"
        if len(cells) != columns:
            raise ConllDataError(f"{where}: {len(cells)} columns, expected {columns} (token POS chunk NER); "
                                 "fix the line or its separators")
        _check_tag(cells[-1], where)
        if not rows:
            first_line = lineno
        rows.append(cells)
    flush()
    if not sentences:
        raise ConllDataError(f"{path}: no sentences; a CoNLL file has one 'token POS chunk NER' line per word")
    return sentences


def label_list(sentences: Iterable[ConllSentence] | None = None) -> tuple[str, ...]:
    """The standard 9 CoNLL-2003 tags, or, given sentences, their tags sorted ("O" first, then B-/I- by type)."""
    if sentences is None:
        return STANDARD_TAGS
    tags = {t for s in sentences for t in s.tags}
    return tuple(sorted(tags, key=lambda t: ("" if t == "O" else t[2:], t)))


@dataclasses.dataclass
class ConllFeatures:
    """Model inputs plus `labels` (tag id on each word's first piece, IGNORE elsewhere) and
    `word_ids` (the word each token belongs to, -1 for specials, padding and lost pieces).
    `truncated[i]` counts the words of sentence i that got no token within max_length."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    labels: np.ndarray
    word_ids: np.ndarray
    num_words: np.ndarray
    truncated: np.ndarray

    def model_inputs(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids, "labels": self.labels}


def _char_to_word(words: Sequence[str]) -> tuple[str, np.ndarray]:
    """The words joined by single spaces, and each character's word index (-1 on the spaces)."""
    owner = []
    for i, w in enumerate(words):
        if i:
            owner.append(-1)
        owner.extend([i] * len(w))
    return " ".join(words), np.asarray(owner, np.int64)


def token_word_ids(offsets: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Word index of each token [T] from its character span [T, 2]: the word of its first non-space
    character (a SentencePiece "▁word" span may start on the space); -1 for empty spans."""
    lo, hi = offsets[:, 0].astype(np.int64), offsets[:, 1].astype(np.int64)
    padded = np.append(owner, [-1, -1])  # words are joined by single spaces: lo or lo + 1 is a word character
    first = padded[np.clip(lo, 0, len(owner))]
    second = np.where(lo + 1 < hi, padded[np.clip(lo + 1, 0, len(owner))], -1)
    word = np.where(first >= 0, first, second)
    return np.where((lo >= 0) & (hi > lo), word, -1)


def first_pieces(word_ids: np.ndarray) -> np.ndarray:
    """bool [..., T]: tokens that begin a word (a word's pieces are consecutive tokens)."""
    previous = np.concatenate([np.full(word_ids.shape[:-1] + (1,), -1), word_ids[..., :-1]], axis=-1)
    return (word_ids >= 0) & (word_ids != previous)


def encode_conll(sentences: Sequence[ConllSentence], tokenizer: Any, tags: Sequence[str] = STANDARD_TAGS,
                 max_length: int = 128) -> ConllFeatures:
    """Tokenize each sentence (its words joined by spaces) and put each word's tag id on its first piece.

    Tokens are matched to words through the tokenizer's character offsets, so any tokenizer
    kind works. A tag not in `tags` raises a ConllDataError naming it.
    """
    if not sentences:
        raise ConllDataError("no CoNLL sentences to encode; read a non-empty file first")
    tag_id = {t: i for i, t in enumerate(tags)}
    unknown = sorted({t for s in sentences for t in s.tags} - set(tag_id))
    if unknown:
        raise ConllDataError(f"tag(s) {unknown} are not in the label list {list(tags)}; "
                             "build it with label_list(sentences) or fix the data")
    joined = [_char_to_word(s.words) for s in sentences]
    enc = tokenizer([text for text, _ in joined], max_length=max_length, padding="max_length", truncation=True,
                    return_offsets=True)
    n, t = enc["input_ids"].shape
    labels = np.full((n, t), IGNORE, np.int32)
    word_ids = np.full((n, t), -1, np.int32)
    truncated = np.zeros(n, np.int32)
    for i, (sentence, (_, owner)) in enumerate(zip(sentences, joined, strict=True)):
        ids = token_word_ids(np.asarray(enc["offset_mapping"][i]), owner)
        ids[np.asarray(enc["attention_mask"][i]) == 0] = -1
        word_ids[i] = ids
        first = np.flatnonzero(first_pieces(ids))
        labels[i, first] = [tag_id[sentence.tags[w]] for w in ids[first]]
        truncated[i] = len(sentence.words) - len(np.unique(ids[first]))
    return ConllFeatures(
        input_ids=np.asarray(enc["input_ids"], np.int32), attention_mask=np.asarray(enc["attention_mask"], np.int32),
        token_type_ids=np.asarray(enc["token_type_ids"], np.int32), labels=labels, word_ids=word_ids,
        num_words=np.asarray([len(s.words) for s in sentences], np.int32), truncated=truncated)


def predictions_to_words(predictions: np.ndarray, word_ids: np.ndarray, num_words: Sequence[int],
                         tags: Sequence[str] = STANDARD_TAGS, default: str = "O") -> list[list[str]]:
    """Per-word tags from per-token predictions [N, T] (tag ids, or logits [N, T, C]).

    Each word takes the prediction on its first piece; a word with no token (cut by
    max_length) gets `default`.
    """
    preds = np.asarray(predictions)
    if preds.ndim == 3:
        preds = preds.argmax(-1)
    if preds.shape != np.asarray(word_ids).shape:
        raise ConllDataError(f"predictions of shape {preds.shape} do not match word_ids {np.shape(word_ids)}; "
                             "pass one prediction per token of the encoded features")
    word_ids = np.asarray(word_ids)
    first = first_pieces(word_ids)
    out = []
    for row, ids, is_first, count in zip(preds, word_ids, first, num_words, strict=True):
        words = [default] * int(count)
        # Reversed so that, should a word's pieces not be adjacent, its first piece wins.
        for p, w in zip(row[is_first][::-1], ids[is_first][::-1], strict=True):
            words[w] = tags[int(p)]
        out.append(words)
    return out


def tag_counts(sentences: Iterable[ConllSentence]) -> Counter:
    """How often each tag occurs (e.g. to check B-PER / B-LOC counts against the published statistics)."""
    return Counter(t for s in sentences for t in s.tags)
