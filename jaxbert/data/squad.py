"""SQuAD v1.1 / v2.0: JSON reading, document-stride window features, and logits -> answer text.

Windows follow BERT's `run_squad.py`: the question is cut to `max_query_len` tokens, the
document is covered by windows of up to `max_seq_len - len(question) - specials` tokens whose
starts are `doc_stride` tokens apart (doc_stride is the step, not the overlap), and each
token is scored only in the window where it has the most context. Answers are located and
read back through the tokenizer's character offsets into the original context, so a predicted
answer is an exact slice of the context (accents, case and all), whatever the tokenizer's
normalisation.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError

CLS_INDEX = 0  # every supported family puts its [CLS] / <s> token first: the "no answer" position


class SquadDataError(JaxbertError, ValueError):
    """A SQuAD file, answer or setting is wrong; the message names the question id or file and the fix."""


@dataclasses.dataclass(frozen=True)
class SquadAnswer:
    text: str
    start: int  # character offset into the context

    @property
    def end(self) -> int:
        """Exclusive character end."""
        return self.start + len(self.text)


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question on one context; `answers` is empty for an unanswerable (v2.0) question."""

    id: str
    title: str
    question: str
    context: str
    answers: tuple[SquadAnswer, ...]
    is_impossible: bool = False


@dataclasses.dataclass
class SquadData:
    examples: list[SquadExample]
    version: str
    skipped: Counter = dataclasses.field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.examples)


def read_squad(path: str | Path, *, on_bad_answer: str = "raise") -> SquadData:
    """Questions of a SQuAD v1.1 or v2.0 JSON file.

    An answer whose `answer_start` does not point at its `text` in the context raises a
    SquadDataError naming the question id; with `on_bad_answer="skip"` that question is
    dropped and counted in `SquadData.skipped["bad_answer"]`.
    """
    if on_bad_answer not in ("raise", "skip"):
        raise SquadDataError(f"on_bad_answer={on_bad_answer!r}; use 'raise' or 'skip'")
    path = storage.path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SquadDataError(f"SQuAD file {path} does not exist; pass a train-v1.1.json-style file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SquadDataError(f"{path} is not UTF-8 JSON ({e}); pass an official SQuAD JSON file") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise SquadDataError(f"{path} has no top-level 'data' list; pass an official SQuAD JSON file")
    data = SquadData(examples=[], version=str(raw.get("version", "")))
    for article in raw["data"]:
        title = str(article.get("title", ""))
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                example = _read_question(path, title, context, qa, on_bad_answer)
                if example is None:
                    data.skipped["bad_answer"] += 1
                else:
                    data.examples.append(example)
    if any(e.is_impossible for e in data.examples) and not data.version:
        data.version = "v2.0"
    return data


def _read_question(path: Path, title: str, context: str, qa: dict, on_bad_answer: str) -> SquadExample | None:
    qid = str(qa.get("id", "?"))
    if not isinstance(qa.get("question"), str):
        raise SquadDataError(f"{path}: question {qid} has no 'question' text; fix the file")
    impossible = bool(qa.get("is_impossible", False))
    answers = []
    for ans in [] if impossible else qa.get("answers", []):
        text, start = ans.get("text"), ans.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int) or context[start:start + len(text)] != text:
            if on_bad_answer == "skip":
                return None
            found = context[start:start + len(text)] if isinstance(start, int) and isinstance(text, str) else None
            raise SquadDataError(
                f"{path}: question {qid}: answer {text!r} does not match the context at answer_start "
                f"{start!r} (the context there reads {found!r}); fix answer_start or pass on_bad_answer='skip'")
        answers.append(SquadAnswer(text=text, start=start))
    if not impossible and not answers:
        if on_bad_answer == "skip":
            return None
        raise SquadDataError(f"{path}: question {qid} has no answers and is not marked is_impossible; "
                             "add an answer or set is_impossible (SQuAD v2.0)")
    return SquadExample(id=qid, title=title, question=qa["question"], context=context,
                        answers=tuple(answers), is_impossible=impossible)


# ---- features ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PairLayout:
    """Where a tokenizer puts its special tokens around one text and around a pair.

    Read from the tokenizer itself (by encoding "a" and ("a", "b")), so windows are laid out
    the way each family's pair template does it: [CLS] q [SEP] d [SEP] for BERT, <s> q </s></s>
    d </s> for RoBERTa.
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    first_type: int
    middle_types: tuple[int, ...]
    second_type: int
    suffix_types: tuple[int, ...]
    single_prefix: int  # special tokens before / after one encoded text
    single_suffix: int

    @property
    def num_specials(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i:i + len(sub)] == sub:
            return i
    return -1


def pair_layout(tokenizer: Any) -> PairLayout:
    """The tokenizer's single and pair templates, found by encoding probe texts."""
    a = list(tokenizer.encode("a", add_special_tokens=False))
    b = list(tokenizer.encode("b", add_special_tokens=False))
    pair = tokenizer(["a"], ["b"], max_length=64, padding="longest", truncation=False)
    single = tokenizer(["a"], max_length=64, padding="longest", truncation=False)
    ids = [int(x) for x, m in zip(pair["input_ids"][0], pair["attention_mask"][0], strict=True) if m]
    types = [int(x) for x in pair["token_type_ids"][0][: len(ids)]]
    single_ids = [int(x) for x, m in zip(single["input_ids"][0], single["attention_mask"][0], strict=True) if m]
    i = _find(ids, a, 0)
    j = _find(ids, b, i + len(a)) if i >= 0 else -1
    k = _find(single_ids, a, 0)
    if not a or not b or i < 0 or j < 0 or k < 0:
        raise SquadDataError(f"cannot read the pair template of {type(tokenizer).__name__}: 'a' and 'b' not found "
                             f"in its pair encoding {ids}; use a BERT-family tokenizer")
    return PairLayout(
        prefix=tuple(ids[:i]), middle=tuple(ids[i + len(a):j]), suffix=tuple(ids[j + len(b):]),
        prefix_types=tuple(types[:i]), first_type=types[i], middle_types=tuple(types[i + len(a):j]),
        second_type=types[j], suffix_types=tuple(types[j + len(b):]),
        single_prefix=k, single_suffix=len(single_ids) - k - len(a))


def _encode_texts(tokenizer: Any, texts: Sequence[str], layout: PairLayout, chunk: int = 256
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids [n], char offsets [n, 2]) of each text, without special tokens or truncation."""
    out = []
    for lo in range(0, len(texts), chunk):
        enc = tokenizer(list(texts[lo:lo + chunk]), max_length=512, padding="longest", truncation=False,
                        return_offsets=True)
        for ids, mask, offsets in zip(enc["input_ids"], enc["attention_mask"], enc["offset_mapping"], strict=True):
            real = mask.astype(bool)  # the real tokens, wherever the tokenizer pads (XLNet's pads on the left)
            n = int(real.sum())
            keep = slice(layout.single_prefix, n - layout.single_suffix)
            out.append((np.asarray(ids[real][keep], np.int32), np.asarray(offsets[real][keep], np.int32)))
    return out


def doc_windows(num_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window over a document, as BERT's run_squad.py makes them."""
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def max_context_window(spans: Sequence[tuple[int, int]], num_tokens: int) -> np.ndarray:
    """For each document token, the window where it has the most context (BERT's _check_is_max_context)."""
    score = np.full((len(spans), num_tokens), -np.inf)
    for w, (start, length) in enumerate(spans):
        pos = np.arange(start, start + length)
        score[w, pos] = np.minimum(pos - start, start + length - 1 - pos) + 0.01 * length
    return score.argmax(axis=0) if spans else np.zeros(0, np.int64)  # argmax keeps the first best, as BERT


@dataclasses.dataclass
class SquadFeatures:
    """One row per window. `offset_mapping` holds each context token's character span in its
    example's context and (-1, -1) on question, special and padding tokens;
    `token_is_max_context` marks the tokens this window should score.
    `start_positions` / `end_positions` are CLS_INDEX (0) where the window holds no answer.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    offset_mapping: np.ndarray
    token_is_max_context: np.ndarray
    example_index: np.ndarray
    example_ids: list[str]
    skipped: Counter = dataclasses.field(default_factory=Counter)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def model_inputs(self) -> dict[str, np.ndarray]:
        """The arrays a training batch needs: model inputs plus start/end positions."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids, "start_positions": self.start_positions,
                "end_positions": self.end_positions}


def answer_token_span(offsets: np.ndarray, answer: SquadAnswer) -> tuple[int, int] | None:
    """(first, last) document token covering the answer's characters, or None if no token does."""
    covering = np.flatnonzero((offsets[:, 1] > answer.start) & (offsets[:, 0] < answer.end))
    if covering.size == 0:
        return None
    return int(covering[0]), int(covering[-1])


def squad_features(examples: Sequence[SquadExample], tokenizer: Any, *, max_seq_len: int = 384,
                   doc_stride: int = 128, max_query_len: int = 64, on_bad_answer: str = "raise") -> SquadFeatures:
    """Window features of SQuAD examples, with the first answer's token positions per window.

    An answer no context token covers (e.g. only characters the tokenizer drops) raises a
    SquadDataError naming the question, or with `on_bad_answer="skip"` drops the example and
    counts it in `skipped["untokenizable_answer"]`.
    """
    if doc_stride < 1 or max_query_len < 1:
        raise SquadDataError(f"doc_stride={doc_stride}, max_query_len={max_query_len}: both must be >= 1")
    layout = pair_layout(tokenizer)
    pad = tokenizer.special.pad
    contexts = sorted({e.context for e in examples})
    context_tokens = dict(zip(contexts, _encode_texts(tokenizer, contexts, layout), strict=True))
    question_tokens = _encode_texts(tokenizer, [e.question for e in examples], layout)

    rows: dict[str, list] = {k: [] for k in ("ids", "length", "types", "starts", "ends", "offsets", "max_ctx",
                                             "example")}
    ids_out: list[str] = []
    skipped: Counter = Counter()
    for index, example in enumerate(examples):
        q_ids = question_tokens[index][0][:max_query_len]
        d_ids, d_offsets = context_tokens[example.context]
        max_doc = max_seq_len - len(q_ids) - layout.num_specials
        if max_doc < 1:
            raise SquadDataError(f"max_seq_len={max_seq_len} leaves no room for the context after a "
                                 f"{len(q_ids)}-token question; raise max_seq_len or lower max_query_len")
        span = None
        if example.answers:
            span = answer_token_span(d_offsets, example.answers[0])
            if span is None:
                if on_bad_answer == "skip":
                    skipped["untokenizable_answer"] += 1
                    continue
                raise SquadDataError(f"question {example.id}: no token of the context covers the answer "
                                     f"{example.answers[0].text!r}; pass on_bad_answer='skip' to drop it")
        windows = doc_windows(len(d_ids), max_doc, doc_stride)
        best = max_context_window(windows, len(d_ids))
        head = list(layout.prefix) + list(q_ids) + list(layout.middle)
        head_types = list(layout.prefix_types) + [layout.first_type] * len(q_ids) + list(layout.middle_types)
        doc_at = len(head)
        for w, (start, length) in enumerate(windows):
            n = doc_at + length + len(layout.suffix)
            ids = np.full(max_seq_len, pad, np.int32)
            ids[:n] = head + d_ids[start:start + length].tolist() + list(layout.suffix)
            types = np.zeros(max_seq_len, np.int32)
            types[:n] = head_types + [layout.second_type] * length + list(layout.suffix_types)
            offsets = np.full((max_seq_len, 2), -1, np.int32)
            offsets[doc_at:doc_at + length] = d_offsets[start:start + length]
            max_ctx = np.zeros(max_seq_len, bool)
            max_ctx[doc_at:doc_at + length] = best[start:start + length] == w
            s = e = CLS_INDEX
            if span is not None and start <= span[0] and span[1] < start + length:
                s, e = doc_at + span[0] - start, doc_at + span[1] - start
            window = {"ids": ids, "length": n, "types": types, "starts": s, "ends": e, "offsets": offsets,
                      "max_ctx": max_ctx, "example": index}
            for key, value in window.items():
                rows[key].append(value)
            ids_out.append(example.id)
    if not ids_out:
        raise SquadDataError("no SQuAD features were made; pass examples with non-empty contexts")
    input_ids = np.stack(rows["ids"])
    return SquadFeatures(
        input_ids=input_ids,
        attention_mask=(np.arange(max_seq_len)[None, :] < np.asarray(rows["length"])[:, None]).astype(np.int32),
        token_type_ids=np.stack(rows["types"]),
        start_positions=np.asarray(rows["starts"], np.int32),
        end_positions=np.asarray(rows["ends"], np.int32),
        offset_mapping=np.stack(rows["offsets"]),
        token_is_max_context=np.stack(rows["max_ctx"]),
        example_index=np.asarray(rows["example"], np.int32),
        example_ids=ids_out,
        skipped=skipped,
    )


# ---- postprocessing -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SquadPrediction:
    """One candidate answer: its text (a slice of the context), character span and scores."""

    text: str
    start: int
    end: int
    start_logit: float
    end_logit: float
    probability: float = 0.0

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


@dataclasses.dataclass
class SquadPredictions:
    """`answers[id]` the chosen text ("" for no answer); `nbest[id]` the ranked candidates;
    `null_odds[id]` null score minus best span score (v2.0: the "na_prob" the official script
    thresholds; absent for v1.1)."""

    answers: dict[str, str]
    nbest: dict[str, list[SquadPrediction]]
    null_odds: dict[str, float]


def _top(values: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:n]


def _softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    x = np.asarray(scores, np.float64)
    e = np.exp(x - x.max())
    return (e / e.sum()).tolist()


def postprocess_squad(examples: Sequence[SquadExample], features: SquadFeatures, start_logits: np.ndarray,
                      end_logits: np.ndarray, *, n_best_size: int = 20, max_answer_length: int = 30,
                      version_2: bool = False, null_score_diff_threshold: float = 0.0) -> SquadPredictions:
    """Answer texts from per-window start/end logits [F, T], as BERT's `write_predictions` picks them.

    Candidates are the top `n_best_size` starts and ends of every window of an example, kept when
    both lie in the context, start <= end, the span is at most `max_answer_length` tokens and the
    start token is scored in its max-context window. With `version_2`, the answer is "" when the
    lowest null score (CLS start + end logit, over the windows) beats the best span by more than
    `null_score_diff_threshold`.
    """
    start_logits, end_logits = np.asarray(start_logits, np.float32), np.asarray(end_logits, np.float32)
    if start_logits.shape != features.input_ids.shape or end_logits.shape != features.input_ids.shape:
        raise SquadDataError(f"logits of shape {start_logits.shape} / {end_logits.shape} do not match the features "
                             f"{features.input_ids.shape}; pass one start and end logit per feature token")
    by_example: dict[int, list[int]] = {}
    for f, ex in enumerate(features.example_index):
        by_example.setdefault(int(ex), []).append(f)
    result = SquadPredictions(answers={}, nbest={}, null_odds={})
    for index, example in enumerate(examples):
        spans: list[tuple[float, float, int, int]] = []  # (start logit, end logit, char start, char end)
        null_score, null_logits = np.inf, (0.0, 0.0)
        for f in by_example.get(index, []):
            offsets, max_ctx = features.offset_mapping[f], features.token_is_max_context[f]
            s_logits, e_logits = start_logits[f], end_logits[f]
            feature_null = float(s_logits[CLS_INDEX] + e_logits[CLS_INDEX])
            if feature_null < null_score:
                null_score, null_logits = feature_null, (float(s_logits[CLS_INDEX]), float(e_logits[CLS_INDEX]))
            starts = _top(s_logits, n_best_size)
            starts = starts[(offsets[starts, 0] >= 0) & max_ctx[starts]]
            ends = _top(e_logits, n_best_size)
            ends = ends[offsets[ends, 0] >= 0]
            s_grid, e_grid = np.meshgrid(starts, ends, indexing="ij")
            ok = (e_grid >= s_grid) & (e_grid - s_grid + 1 <= max_answer_length)
            spans.extend((float(s_logits[s]), float(e_logits[e]), int(offsets[s, 0]), int(offsets[e, 1]))
                         for s, e in zip(s_grid[ok], e_grid[ok], strict=True))
        candidates = [SquadPrediction(example.context[lo:hi], lo, hi, sl, el) for sl, el, lo, hi in spans]
        best_span = max(candidates, key=lambda p: p.score) if candidates else None
        if version_2 and np.isfinite(null_score):
            candidates.append(SquadPrediction("", -1, -1, *null_logits))
        candidates.sort(key=lambda p: p.score, reverse=True)
        nbest: list[SquadPrediction] = []
        seen: set[str] = set()
        for cand in candidates:
            if cand.text not in seen:
                seen.add(cand.text)
                nbest.append(cand)
        # Like the reference: the top n_best_size texts, plus the null answer if it fell below them.
        nbest = nbest[:n_best_size] + [p for p in nbest[n_best_size:] if p.start < 0]
        probs = _softmax([p.score for p in nbest])
        nbest = [dataclasses.replace(p, probability=q) for p, q in zip(nbest, probs, strict=True)]
        if version_2:
            diff = null_score - best_span.score if best_span is not None else np.inf
            result.null_odds[example.id] = float(diff)
            answer = "" if best_span is None or diff > null_score_diff_threshold else best_span.text
        else:
            answer = best_span.text if best_span is not None else ""
        result.answers[example.id] = answer
        result.nbest[example.id] = nbest
    return result
