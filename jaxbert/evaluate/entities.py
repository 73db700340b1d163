"""Entity-level precision / recall / F1 for sequence labelling (CoNLL-2003 NER), as seqeval computes them.

Tags are "O" or a prefix B/I/E/S, optionally followed by "-TYPE" ("B-PER"; a bare "B" has type "_").
Two ways to read chunks, as seqeval offers:

* scheme=None (seqeval's default, compatible with conlleval.pl): lenient, works for IOB1, IOB2
  (BIO) and IOBES alike; an I- tag after O or after another type opens a new entity.
* scheme="IOB1" | "IOB2" | "IOBES" (seqeval's mode="strict"): an entity counts only if it is
  well formed in that scheme, e.g. in IOB2 it must open with B-, and in IOBES close with E- or be S-.

An entity is (sentence, type, first token, last token); a predicted entity is right only if all four match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError

Entity = tuple[str, int, int]  # (type, first token, last token), within one sentence
SCHEMES = ("IOB1", "IOB2", "IOBES")


def _split_tag(tag: str) -> tuple[str, str]:
    """("B", "PER") from "B-PER"; ("O", "") from "O"; a bare prefix gets seqeval's type "_"."""
    if tag == "O":
        return "O", ""
    if isinstance(tag, str) and tag[:1] in ("B", "I", "E", "S"):
        if len(tag) == 1:
            return tag, "_"
        if tag[1] == "-" and len(tag) > 2:
            return tag[0], tag[2:]
    raise JaxbertError(f"bad sequence tag {tag!r}; tags are 'O' or B-/I-/E-/S- followed by an entity type")


def _lenient_entities(tags: Sequence[str]) -> list[Entity]:
    """conlleval's chunking: a chunk ends / starts wherever the prefix or the type says so."""
    entities: list[Entity] = []
    prev_prefix, prev_type, start = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # the trailing O closes a chunk still open at the end
        prefix, type_ = _split_tag(tag)
        ends = prev_prefix != "O" and (prev_prefix in ("E", "S") or prefix in ("B", "S", "O") or prev_type != type_)
        starts = prefix != "O" and (prefix in ("B", "S") or prev_prefix in ("O", "E", "S") or prev_type != type_)
        if ends:
            entities.append((prev_type, start, i - 1))
        if starts:
            start = i
        prev_prefix, prev_type = prefix, type_
    return entities


# Strict schemes, after seqeval.scheme: for each scheme, the (previous prefix, prefix, same type?)
# transitions that open an entity, that continue it, and that close it (the pair being the entity's
# last token and the one after it). None in the third place means "either".
_STRICT: dict[str, dict[str, set[tuple[str, str, bool | None]]]] = {
    "IOB1": {
        "allowed": {"I", "O", "B"},
        "open": {("O", "I", None), ("I", "I", False), ("B", "I", None), ("I", "B", True), ("B", "B", True)},
        "continue": {("B", "I", True), ("I", "I", True)},
        "close": {
            ("I", "I", False),
            ("I", "O", None),
            ("I", "B", None),
            ("B", "O", None),
            ("B", "I", False),
            ("B", "B", True),
        },
    },
    "IOB2": {
        "allowed": {"I", "O", "B"},
        "open": {(p, "B", None) for p in ("I", "O", "B")},
        "continue": {("B", "I", True), ("I", "I", True)},
        "close": {
            ("I", "O", None),
            ("I", "I", False),
            ("I", "B", None),
            ("B", "O", None),
            ("B", "I", False),
            ("B", "B", None),
        },
    },
    "IOBES": {
        "allowed": {"I", "O", "B", "E", "S"},
        "open": {(p, c, None) for p in "IOBES" for c in "BS"},
        "continue": {("B", "I", True), ("B", "E", True), ("I", "I", True), ("I", "E", True)},
        "close": {(p, c, None) for p in "SE" for c in "IOBES"},
    },
}


def _matches(rules: set[tuple[str, str, bool | None]], prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    same = prev[1] == cur[1]
    return (prev[0], cur[0], None) in rules or (prev[0], cur[0], same) in rules


def _strict_entities(tags: Sequence[str], scheme: str) -> list[Entity]:
    rules = _STRICT[scheme]
    tokens = [_split_tag(t) for t in tags]
    for tag, (prefix, _) in zip(tags, tokens, strict=True):
        if prefix not in rules["allowed"]:
            raise JaxbertError(
                f"tag {tag!r} is not valid in the {scheme} scheme; use its prefixes "
                f"{'/'.join(sorted(rules['allowed']))} or scheme=None"
            )
    # O's type is "_" here (seqeval's Token), so a bare "B" and "O" count as the same type.
    tokens = [(p, "_" if p == "O" else t) for p, t in tokens] + [("O", "_")]
    entities: list[Entity] = []
    i = 0
    while i < len(tokens):
        prev = tokens[i - 1] if i > 0 else ("O", "_")
        if not _matches(rules["open"], prev, tokens[i]):
            i += 1
            continue
        end = i + 1
        while _matches(rules["continue"], tokens[end - 1], tokens[end]):
            end += 1
        # A chunk that is not closed properly (e.g. IOBES B-X I-X O) is dropped, its tokens skipped.
        if _matches(rules["close"], tokens[end - 1], tokens[end]):
            entities.append((tokens[i][1], i, end - 1))
        i = end
    return entities


def get_entities(tags: Sequence[str], scheme: str | None = None) -> list[Entity]:
    """Entities (type, first, last) of one sentence's tags; `scheme` as in this module's docstring."""
    if scheme is None:
        return _lenient_entities(tags)
    if scheme not in SCHEMES:
        raise JaxbertError(f"unknown tagging scheme {scheme!r}; use None (conlleval) or one of {', '.join(SCHEMES)}")
    return _strict_entities(tags, scheme)


def _sentences(name: str, sequences: Sequence[Any]) -> list[list[str]]:
    """A list of sentences; a flat list of tag strings is one sentence (as seqeval reads it)."""
    if isinstance(sequences, str):
        raise JaxbertError(f"{name} is a string; pass a list of tag lists (one per sentence)")
    sequences = list(sequences)
    if all(isinstance(s, str) for s in sequences):
        return [sequences]
    if any(isinstance(s, str) for s in sequences):
        raise JaxbertError(f"{name} mixes tags and tag lists; pass a list of tag lists (one per sentence)")
    return [list(s) for s in sequences]


def _entity_sets(
    predictions: Sequence[Any], references: Sequence[Any], scheme: str | None
) -> tuple[dict[str, set], dict[str, set]]:
    preds = _sentences("predictions", predictions)
    refs = _sentences("references", references)
    if len(preds) != len(refs):
        raise JaxbertError(
            f"{len(preds)} predicted sentences for {len(refs)} reference sentences; pass one per sentence"
        )
    by_type_pred: dict[str, set] = {}
    by_type_ref: dict[str, set] = {}
    for n, (pred, ref) in enumerate(zip(preds, refs, strict=True)):
        if len(pred) != len(ref):
            raise JaxbertError(
                f"sentence {n} has {len(pred)} predicted tags for {len(ref)} reference tags; pass one tag per token"
            )
        for out, tags in ((by_type_pred, pred), (by_type_ref, ref)):
            for type_, first, last in get_entities(tags, scheme):
                out.setdefault(type_, set()).add((n, first, last))
    return by_type_pred, by_type_ref


def _prf(correct: float, predicted: float, actual: float) -> tuple[float, float, float]:
    # 0 for an undefined ratio (nothing predicted / nothing to find), as seqeval's default zero_division.
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_report(
    predictions: Sequence[Any], references: Sequence[Any], scheme: str | None = None
) -> dict[str, dict[str, float]]:
    """Per-type and averaged scores, like seqeval's classification_report(output_dict=True).

    Keys: each entity type (sorted), then "micro avg", "macro avg", "weighted avg"; each value is
    {"precision", "recall", "f1", "support"} with support the number of reference entities. The
    macro average over no type at all is nan (seqeval: the mean of nothing).
    """
    by_pred, by_ref = _entity_sets(predictions, references, scheme)
    types = sorted(set(by_pred) | set(by_ref))
    counts = np.array(
        [
            [len(by_pred.get(t, set()) & by_ref.get(t, set())), len(by_pred.get(t, ())), len(by_ref.get(t, ()))]
            for t in types
        ],
        dtype=np.int64,
    ).reshape(-1, 3)
    rows = np.array([_prf(*c) for c in counts], dtype=np.float64).reshape(-1, 3)
    report = {
        t: {"precision": p, "recall": r, "f1": f, "support": int(c[2])}
        for t, (p, r, f), c in zip(types, rows.tolist(), counts, strict=True)
    }
    correct, predicted, actual = counts.sum(axis=0).tolist()
    p, r, f = _prf(correct, predicted, actual)
    report["micro avg"] = {"precision": p, "recall": r, "f1": f, "support": actual}
    macro = rows.mean(axis=0).tolist() if types else [float("nan")] * 3
    report["macro avg"] = dict(zip(("precision", "recall", "f1"), macro, strict=True)) | {"support": actual}
    if actual:
        weighted = (rows * counts[:, 2:3]).sum(axis=0) / actual
    else:  # nothing to find: recall 0, precision and F1 0 too (seqeval's zero_division for weighted)
        weighted = np.zeros(3)
    report["weighted avg"] = dict(zip(("precision", "recall", "f1"), weighted.tolist(), strict=True)) | {
        "support": actual
    }
    return report


def entity_scores(predictions: Sequence[Any], references: Sequence[Any], scheme: str | None = None) -> dict[str, float]:
    """Micro-averaged entity {"precision", "recall", "f1"} (seqeval's precision/recall/f1_score defaults)."""
    micro = entity_report(predictions, references, scheme)["micro avg"]
    return {k: micro[k] for k in ("precision", "recall", "f1")}
