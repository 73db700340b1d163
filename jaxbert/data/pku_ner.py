"""Chinese named entities from a PKU-tagged corpus (People's Daily 1998, `word/tag` items), character-level BIO.

Entities, as the shared data's README defines them: PER = a run of consecutive `nr` words (surname and
given name are separate words: `江/nr  泽民/nr` is one person), LOC = each `ns` word, ORG = each `nt`
word; everything else is O. Each character is one tagging unit (B-TYPE on an entity's first character,
I-TYPE on the rest), as Chinese NER is usually scored; sentences are split after 。！？ (with the
closing quotes that follow), so a paragraph line gives several examples. The sentences come back as
`ConllSentence`s whose words are the characters, so the CoNLL pipeline (first piece of each character
labelled, entity F1 by seqeval's rules) serves them unchanged.
"""

from __future__ import annotations

from pathlib import Path

from jaxbert.data.conll import ConllDataError, ConllSentence
from jaxbert.data.segmenters import PresegmentedSegmenter

ZH_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
ENTITY_OF_TAG = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
_SENTENCE_END = {"。", "！", "？", "!", "?"}
_CLOSERS = {"”", "’", "」", "』", "）", ")", "》"}


def tagged_words(line: str) -> list[tuple[str, str]]:
    """(word, tag) pairs of one PKU line (a word without a tag gets tag "")."""
    out = []
    for item in line.split():
        # A word may itself be "/" ("//w"): the tag follows the last slash.
        word, _, tag = item.rpartition("/") if "/" in item[1:] else (item, "", "")
        out.append((word, tag))
    return out


def char_tags(words: list[tuple[str, str]]) -> list[str]:
    """One BIO tag per character of the words (see the module docstring for the entity rules)."""
    tags: list[str] = []
    previous = ""
    for word, tag in words:
        kind = ENTITY_OF_TAG.get(tag, "")
        # Consecutive person-name parts continue one PER; LOC and ORG words are one entity each.
        continues = kind == "PER" and previous == "PER"
        for i in range(len(word)):
            if not kind:
                tags.append("O")
            else:
                tags.append(f"I-{kind}" if i or continues else f"B-{kind}")
        previous = kind
    return tags


def split_sentences(words: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Words grouped into sentences: a sentence ends after 。！？ and any closing quotes right after."""
    sentences: list[list[tuple[str, str]]] = [[]]
    for i, item in enumerate(words):
        sentences[-1].append(item)
        ends = item[0] in _SENTENCE_END or (item[0] in _CLOSERS and i and words[i - 1][0] in _SENTENCE_END)
        following = words[i + 1][0] if i + 1 < len(words) else ""
        if ends and following not in _CLOSERS:
            sentences.append([])
    return [s for s in sentences if s]


def read_pku_ner(path: str | Path, split: bool = True) -> list[ConllSentence]:
    """Character-level NER sentences of a PKU-tagged file (one paragraph a line)."""
    path = Path(path)
    if not path.is_file():
        raise ConllDataError(f"PKU-tagged file {path} does not exist; pass People's Daily text in word/tag form")
    out: list[ConllSentence] = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise ConllDataError(f"{path}: not UTF-8 text; convert the file to UTF-8") from None
    tagged_lines = 0
    for lineno, line in enumerate(lines, start=1):
        words = [w for w in tagged_words(line) if w[0]]
        if not words:
            continue
        tagged_lines += any(tag for _, tag in words)
        for sentence in split_sentences(words) if split else [words]:
            chars = tuple(ch for word, _ in sentence for ch in word)
            out.append(ConllSentence(words=chars, tags=tuple(char_tags(sentence)), line=lineno))
    if not out or not tagged_lines:
        raise ConllDataError(f"{path}: no word/tag items found; zh_ner reads PKU-tagged text such as "
                             "'江/nr  泽民/nr  发表/v  讲话/n'")
    return out


def running_text(line: str) -> str:
    """The text a PKU line's words make (tags dropped), as pretraining reads it."""
    return PresegmentedSegmenter(tagged=True).segment(line).text
