"""Word segmenters: where the words of a line begin, for whole-word masking of text whose tokens do not say.

A Chinese WordPiece vocabulary splits every CJK character into its own token with no `##` mark, so the
tokens cannot tell where a word ends (google-research/bert issue 780). A segmenter finds the words on
the host when the dataset is built; `jaxbert.data.word_starts` turns them into a per-token word-start
mask stored beside the token ids, and masking stays on device.

Segmenters, named in `data.word_segmenter`:
  * "jieba": the jieba segmenter (`pip install 'jaxbert[zh]'`), precise mode with its HMM for new words.
  * "pku": a pre-segmented corpus in the PKU (People's Daily) form, `word/tag` items separated by spaces;
    the tags are dropped.
  * "spaces": a pre-segmented corpus whose words are separated by spaces.
  * "package.module:function": any other segmenter (LTP, pkuseg, ...): `function(line) -> list[str]`, the
    words of the line in order (whitespace between them may be left out).

A pre-segmented line is turned back into running text the way the words would be written: no space
between words, except between two Latin letters or digits (so "Windows 95" stays two words).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Protocol

from jaxbert.errors import JaxbertError

BUILTIN = ("jieba", "pku", "spaces")


class SegmenterError(JaxbertError, ValueError):
    """A segmenter is unknown, not installed, or gave words that are not in the line."""


@dataclasses.dataclass(frozen=True)
class SegmentedLine:
    """A line's text and the character offsets at which its words begin (ascending)."""

    text: str
    word_starts: tuple[int, ...]


class Segmenter(Protocol):
    name: str
    rewrites_text: bool  # True when the corpus line is not the text itself (pre-segmented forms)

    def segment(self, line: str) -> SegmentedLine: ...


def is_cjk_char(ch: str) -> bool:
    """True for CJK ideographs: the code points BERT's tokenizer splits into single-character tokens."""
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _joins_with_space(left: str, right: str) -> bool:
    a, b = left[-1], right[0]
    return a.isalnum() and b.isalnum() and a.isascii() and b.isascii()


def join_words(words: Sequence[str]) -> SegmentedLine:
    """Running text of pre-segmented words, and where each word begins in it."""
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for word in words:
        if parts and _joins_with_space(parts[-1], word):
            parts.append(" ")
            length += 1
        starts.append(length)
        parts.append(word)
        length += len(word)
    return SegmentedLine("".join(parts), tuple(starts))


def locate_words(line: str, words: Sequence[str], source: str) -> SegmentedLine:
    """Word starts of `words` found in order in `line` (whitespace between them skipped)."""
    starts: list[int] = []
    at = 0
    for word in words:
        word = word.strip()
        if not word:
            continue
        found = line.find(word, at)
        if found < 0 or line[at:found].strip():
            raise SegmenterError(f"segmenter {source} gave the word {word!r}, which does not follow at character "
                                 f"{at} of the line {line[:60]!r}; a segmenter returns the line's words in order")
        starts.append(found)
        at = found + len(word)
    return SegmentedLine(line, tuple(starts))


class PresegmentedSegmenter:
    """Words written out with spaces between them; with `tagged`, each as `word/tag` (the PKU form)."""

    rewrites_text = True

    def __init__(self, tagged: bool) -> None:
        self.tagged = tagged
        self.name = "pku" if tagged else "spaces"

    def words(self, line: str) -> list[str]:
        items = line.split()
        if not self.tagged:
            return items
        # "word/tag"; a word may itself hold "/" (e.g. "//w" is the word "/"), so split at the last one.
        return [w for w in (item.rsplit("/", 1)[0] if "/" in item[1:] else item for item in items) if w]

    def segment(self, line: str) -> SegmentedLine:
        return join_words(self.words(line))


class JiebaSegmenter:
    """jieba's precise mode (`jieba.lcut`), with its HMM for words not in the dictionary."""

    name = "jieba"
    rewrites_text = False

    def __init__(self, hmm: bool = True) -> None:
        try:
            import jieba
        except ImportError:
            raise SegmenterError("data.word_segmenter='jieba' needs the jieba package; install it with "
                                 "pip install 'jaxbert[zh]' (or pip install jieba)") from None
        jieba.setLogLevel(60)  # its dictionary-loading messages go to stderr on first use
        self._cut = jieba.lcut
        self.hmm = hmm

    def segment(self, line: str) -> SegmentedLine:
        return locate_words(line, self._cut(line, HMM=self.hmm), "jieba")


class FunctionSegmenter:
    """Any segmenter given as `function(line) -> list[str]` (the words of the line in order)."""

    rewrites_text = False

    def __init__(self, function: Callable[[str], Sequence[str]], name: str) -> None:
        self._function = function
        self.name = name

    def segment(self, line: str) -> SegmentedLine:
        return locate_words(line, list(self._function(line)), self.name)


def get_segmenter(name: str) -> Segmenter | None:
    """The segmenter named by `data.word_segmenter`; None for "" (words from the vocabulary's ## rule)."""
    if not name:
        return None
    if name == "jieba":
        return JiebaSegmenter()
    if name in ("pku", "spaces"):
        return PresegmentedSegmenter(tagged=name == "pku")
    module, _, attr = name.partition(":")
    if not attr:
        raise SegmenterError(f"data.word_segmenter={name!r} is unknown; use one of {', '.join(BUILTIN)} or "
                             "'package.module:function' (function(line) -> list of words)")
    try:
        function = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise SegmenterError(f"data.word_segmenter={name!r}: cannot import it ({e}); check the module path") from None
    return FunctionSegmenter(function, name)


def check_segmenter_name(name: str) -> None:
    """A one-line error for a name that is neither built in nor of the 'module:function' form."""
    if name and name not in BUILTIN and ":" not in name:
        raise SegmenterError(f"data.word_segmenter={name!r} is unknown; use one of {', '.join(BUILTIN)} or "
                             "'package.module:function' (function(line) -> list of words)")
