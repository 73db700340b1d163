"""SQuAD metrics: the logic of the official evaluate-v1.1.py and evaluate-v2.0.py scripts.

Scores are percentages (0-100), as the official scripts print them. A reference is a mapping with an
"id" and "answers"; answers may be a list of strings, the official JSON's list of {"text": ...}, or
the Hugging Face datasets form {"text": [...], ...}. `flatten_squad` turns an official JSON file into
such references.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxbert.errors import JaxbertError

_PUNCTUATION = frozenset(string.punctuation)  # ASCII only, as in the official scripts
_ARTICLES = re.compile(r"\b(a|an|the)\b")  # str patterns are Unicode-aware: "the" inside "théâtre" stays


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the words a/an/the, collapse whitespace (in that order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalized prediction equals the normalized gold answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, *, empty_is_answer: bool = False) -> float:
    """F1 of the bag-of-tokens overlap between the normalized prediction and gold answer.

    With `empty_is_answer` (SQuAD v2.0) an empty text means "no answer": F1 is 1.0 when both are
    empty and 0.0 when only one is; without it (v1.1) an empty side always scores 0.0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if empty_is_answer and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def answer_texts(reference: Mapping[str, Any]) -> list[str]:
    """The gold answer strings of one reference, whichever of the three answer layouts it uses."""
    try:
        answers = reference["answers"]
    except (KeyError, TypeError):
        raise JaxbertError(
            f"SQuAD reference {reference!r:.80} has no 'answers'; pass {{'id', 'answers'}} mappings"
        ) from None
    if isinstance(answers, Mapping):
        return [str(t) for t in answers.get("text", [])]
    return [a["text"] if isinstance(a, Mapping) else str(a) for a in answers]


def flatten_squad(dataset: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """References [{"id", "question", "answers": [texts]}] from an official SQuAD JSON (or its "data" list)."""
    articles = dataset["data"] if isinstance(dataset, Mapping) else dataset
    try:
        return [
            {"id": qa["id"], "question": qa.get("question", ""), "answers": answer_texts(qa)}
            for article in articles
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    except (KeyError, TypeError) as e:
        raise JaxbertError(f"not a SQuAD JSON layout (data/paragraphs/qas/id/answers): missing {e}") from None


def _reference_ids(references: Sequence[Mapping[str, Any]]) -> list[str]:
    try:
        ids = [str(r["id"]) for r in references]
    except (KeyError, TypeError):
        raise JaxbertError("every SQuAD reference needs an 'id'; pass {'id', 'answers'} mappings") from None
    if not ids:
        raise JaxbertError("no SQuAD references given; pass at least one {'id', 'answers'} mapping")
    if len(set(ids)) != len(ids):
        raise JaxbertError("SQuAD reference ids are not unique; each question needs its own id")
    return ids


def _by_id(name: str, values: Mapping[str, Any] | Sequence[Any], ids: list[str]) -> dict[str, Any]:
    """`values` keyed by question id: a mapping is taken as it is, a sequence is aligned with `ids`."""
    if isinstance(values, Mapping):
        return {str(k): v for k, v in values.items()}
    values = list(values)
    if len(values) != len(ids):
        raise JaxbertError(f"{name} has {len(values)} entries for {len(ids)} references; pass one per question")
    return dict(zip(ids, values, strict=True))


def _best_over_golds(metric: Callable[[str, str], float], prediction: str, golds: list[str]) -> float:
    return max(metric(prediction, gold) for gold in golds)


def squad_v1(
    predictions: Mapping[str, str] | Sequence[str], references: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """{"exact_match", "f1"} of SQuAD v1.1: the best score over each question's gold answers, averaged.

    A question without a prediction scores 0, as in the official script. `predictions` maps question
    id to answer text, or is a list aligned with `references`.
    """
    ids = _reference_ids(references)
    preds = _by_id("predictions", predictions, ids)
    em = f1 = 0.0
    for qid, reference in zip(ids, references, strict=True):
        if qid not in preds:
            continue
        golds = answer_texts(reference)
        if not golds:
            raise JaxbertError(f"SQuAD v1.1 question {qid} has no gold answer; use squad_v2 for unanswerable questions")
        em += _best_over_golds(exact_match, str(preds[qid]), golds)
        f1 += _best_over_golds(token_f1, str(preds[qid]), golds)
    return {"exact_match": 100.0 * em / len(ids), "f1": 100.0 * f1 / len(ids)}


def _v2_raw_scores(
    preds: dict[str, str], ids: list[str], references: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, float], dict[str, float]]:
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    v2_f1 = lambda p, g: token_f1(p, g, empty_is_answer=True)
    for qid, reference in zip(ids, references, strict=True):
        # Golds that normalize to nothing do not count; with none left the only right answer is "".
        golds = [g for g in answer_texts(reference) if normalize_answer(g)] or [""]
        exact[qid] = _best_over_golds(exact_match, preds[qid], golds)
        f1[qid] = _best_over_golds(v2_f1, preds[qid], golds)
    return exact, f1


def find_best_thresh(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    no_answer_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> tuple[float, float]:
    """(best total score in %, threshold) over no-answer thresholds, as evaluate-v2.0.py's find_best_thresh.

    Start from answering nothing (every unanswerable question right), then answer questions in
    increasing order of no-answer probability: an answerable one adds its score, an unanswerable one
    loses 1 if the prediction is non-empty. The threshold is the probability at the best running total;
    questions whose probability exceeds it are predicted unanswerable. Equal probabilities are taken in
    the order of `no_answer_probs`, as the official script does.
    """
    total = sum(1 for qid in has_answer if not has_answer[qid])
    best, best_thresh = total, 0.0
    for qid in sorted(no_answer_probs, key=lambda k: no_answer_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            total += scores[qid]
        elif predictions[qid]:
            total -= 1
        if total > best:
            best, best_thresh = total, no_answer_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def _averages(exact: dict[str, float], f1: dict[str, float], ids: list[str]) -> dict[str, float]:
    return {
        "exact": 100.0 * sum(exact[q] for q in ids) / len(ids),
        "f1": 100.0 * sum(f1[q] for q in ids) / len(ids),
        "total": len(ids),
    }


def squad_v2(
    predictions: Mapping[str, str] | Sequence[str],
    references: Sequence[Mapping[str, Any]],
    no_answer_probs: Mapping[str, float] | Sequence[float] | None = None,
    no_answer_threshold: float = 1.0,
) -> dict[str, float]:
    """SQuAD v2.0 scores with the official script's keys.

    Returns "exact", "f1", "total", the same three prefixed "HasAns_" / "NoAns_" for the answerable /
    unanswerable questions present, and, given `no_answer_probs`, "best_exact", "best_exact_thresh",
    "best_f1", "best_f1_thresh". An empty prediction means "no answer"; a question whose no-answer
    probability exceeds `no_answer_threshold` is scored as predicted unanswerable. Every question
    needs a prediction (the official script fails without one).
    """
    ids = _reference_ids(references)
    preds = {k: str(v) for k, v in _by_id("predictions", predictions, ids).items()}
    missing = [qid for qid in ids if qid not in preds]
    if missing:
        raise JaxbertError(
            f"no prediction for {len(missing)} SQuAD v2.0 questions (e.g. {missing[0]}); predict '' for no answer"
        )
    probs = {qid: 0.0 for qid in preds} if no_answer_probs is None else _by_id("no_answer_probs", no_answer_probs, ids)
    absent = [qid for qid in ids if qid not in probs]
    if absent:
        raise JaxbertError(f"no no-answer probability for question {absent[0]}; pass one per question")
    has_answer = {qid: bool(answer_texts(r)) for qid, r in zip(ids, references, strict=True)}

    exact_raw, f1_raw = _v2_raw_scores(preds, ids, references)

    def thresholded(raw: dict[str, float]) -> dict[str, float]:
        return {q: float(not has_answer[q]) if probs[q] > no_answer_threshold else s for q, s in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    result = _averages(exact, f1, ids)
    for prefix, subset in (
        ("HasAns", [q for q in ids if has_answer[q]]),
        ("NoAns", [q for q in ids if not has_answer[q]]),
    ):
        if subset:
            result.update({f"{prefix}_{k}": v for k, v in _averages(exact, f1, subset).items()})
    if no_answer_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = find_best_thresh(preds, exact_raw, probs, has_answer)
        result["best_f1"], result["best_f1_thresh"] = find_best_thresh(preds, f1_raw, probs, has_answer)
    return result
