"""ALBERT's text clean-up before SentencePiece, keeping where each output character came from.

AlbertTokenizer (and Google's ALBERT `preprocess_text`) collapses whitespace, turns `` and '' into ",
strips accents (NFKD, drop combining marks) and lowercases. Offsets into the original text need the
origin of every character of the cleaned text, so each step here carries along, per character, the
span [start, end) of the original text it stands for.
"""

from __future__ import annotations

import unicodedata

Origins = list[tuple[int, int]]


def _collapse_spaces(text: str) -> tuple[list[str], Origins]:
    # Same result as " ".join(text.strip().split()): str.split() splits on str.isspace() characters.
    chars: list[str] = []
    origin: Origins = []
    gap_start = -1
    for i, c in enumerate(text):
        if c.isspace():
            if gap_start < 0:
                gap_start = i
            continue
        if gap_start >= 0 and chars:
            chars.append(" ")
            origin.append((gap_start, i))
        gap_start = -1
        chars.append(c)
        origin.append((i, i + 1))
    return chars, origin


def _replace_pair(chars: list[str], origin: Origins, pair: str, by: str) -> tuple[list[str], Origins]:
    # str.replace semantics: non-overlapping matches, left to right.
    out_c: list[str] = []
    out_o: Origins = []
    i = 0
    while i < len(chars):
        if i + 1 < len(chars) and chars[i] == pair[0] and chars[i + 1] == pair[1]:
            out_c.append(by)
            out_o.append((origin[i][0], origin[i + 1][1]))
            i += 2
        else:
            out_c.append(chars[i])
            out_o.append(origin[i])
            i += 1
    return out_c, out_o


def _expand(chars: list[str], origin: Origins, fn) -> tuple[list[str], Origins]:
    out_c: list[str] = []
    out_o: Origins = []
    for c, o in zip(chars, origin, strict=True):
        for d in fn(c):
            out_c.append(d)
            out_o.append(o)
    return out_c, out_o


def _strip_accents(c: str) -> str:
    # Per character is exact here: NFKD's canonical reordering only moves combining marks, and those go.
    return "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))


def albert_clean(
    text: str, lowercase: bool = True, keep_accents: bool = False, remove_space: bool = True
) -> tuple[str, Origins]:
    """(cleaned text, origins): origins[j] is the span of `text` that the cleaned character j stands for."""
    if remove_space:
        chars, origin = _collapse_spaces(text)
    else:
        chars, origin = list(text), [(i, i + 1) for i in range(len(text))]
    chars, origin = _replace_pair(chars, origin, "``", '"')
    chars, origin = _replace_pair(chars, origin, "''", '"')
    if not keep_accents:
        chars, origin = _expand(chars, origin, _strip_accents)
    if lowercase:
        lowered = "".join(chars).lower()
        chars, origin = _expand(chars, origin, str.lower)
        if len(lowered) == len(chars):
            # str.lower sees context (a final sigma lowercases to "ς", not "σ"); keep its letters.
            chars = list(lowered)
    return "".join(chars), origin


def albert_clean_text(text: str, lowercase: bool = True, keep_accents: bool = False, remove_space: bool = True) -> str:
    """The cleaned text alone, exactly as AlbertTokenizer's `preprocess_text` gives it."""
    if remove_space:
        text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    if not keep_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    if lowercase:
        text = text.lower()
    return text
