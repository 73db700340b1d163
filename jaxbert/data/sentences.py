"""Sentence splitting of corpus lines, for the formats that work on sentences (NSP, SOP, FULL-SENTENCES).

`data.sentence_split`:
  * "lines" (default): every line is one sentence, as google-research/bert's create_pretraining_data.py
    expects ("one sentence per line"); the corpus's own segmenter decided.
  * "rules": each line is split further after sentence-final punctuation, for corpora with a paragraph a
    line (WikiText, People's Daily). Chinese 。！？ (and ! ? ;) always end a sentence; "." ends one when
    whitespace and then a capital letter, digit or opening quote follow and the word before it is not a
    common abbreviation (Mr., Dr., e.g., U.S., single initials). Closing quotes and brackets stay with the
    sentence they close. A rule-based splitter, not a trained one (such as punkt): it errs on abbreviations
    it does not know.
"""

from __future__ import annotations

import re

from jaxbert.errors import JaxbertError

SPLITS = ("lines", "rules")
_CLOSERS = "\"'”’」』）)]》〉"
_ALWAYS = "。！？!?"
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "corp",
                            "no", "vol", "fig", "e.g", "i.e", "u.s", "u.k", "a.m", "p.m", "gen", "col", "lt", "sgt",
                            "rev"})
# A terminal run (。！？!? or a period) plus the closing quotes / brackets after it.
_LAST_WORD = re.compile(r"[A-Za-z][A-Za-z.]*$")
_END = re.compile(rf"([{re.escape(_ALWAYS)}]+|\.+)[{re.escape(_CLOSERS)}]*")


class SentenceSplitError(JaxbertError, ValueError):
    """An unknown sentence_split value; the message lists the known ones."""


def check_split(name: str) -> None:
    if name not in SPLITS:
        raise SentenceSplitError(f"data.sentence_split={name!r} is unknown; use one of {', '.join(SPLITS)}")


def _period_ends_sentence(text: str, start: int, end: int) -> bool:
    after = text[end:end + 2]
    if not after[:1].isspace() or len(after) < 2:
        return end >= len(text)
    nxt = text[end:].lstrip()[:1]
    if not (nxt.isupper() or nxt.isdigit() or nxt in "\"'“‘(["):
        return False
    before = _LAST_WORD.search(text[:start])
    word = before.group(0).lower() if before else ""
    return not (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for m in _END.finditer(text):
        if m.group(1)[0] == "." and not _period_ends_sentence(text, m.start(), m.end()):
            continue
        spans.append((begin, m.end()))
        begin = m.end()
    spans.append((begin, len(text)))
    out = []
    for lo, hi in spans:
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if hi > lo:
            out.append((lo, hi))
    return out
