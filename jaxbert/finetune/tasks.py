"""The fine-tuning tasks: what each reads, how it is encoded for the model, and how it is scored.

Every task turns a data file into an `EncodedSplit`: fixed-length model inputs plus labels (one
row per sentence, pair, SQuAD window or CoNLL sentence) and a `score(logits)` function giving the
task's official metrics (`jaxbert.evaluate.task_metrics` keys, with "examples").
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert import storage
from jaxbert.data import conll, glue, pku_ner, squad
from jaxbert.errors import JaxbertError
from jaxbert.evaluate import task_metrics


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task: its reader ("glue", "squad", "conll" or "pku"), head kind, and the metric that picks the best
    checkpoint."""

    name: str
    source: str
    kind: str
    metric: str
    eval_name: str  # the name jaxbert.evaluate.task_metrics knows it by

    @property
    def glue(self) -> glue.GlueTask:
        return glue.get_glue_task(self.name)

    def num_labels(self) -> int:
        if self.source == "glue":
            return self.glue.num_labels
        if self.source in ("conll", "pku"):
            return len(self.label_names())
        return 2

    def label_names(self) -> tuple[str, ...] | None:
        """Class names in class-id order (exported as HF id2label), or None (regression, QA)."""
        if self.source == "glue":
            return self.glue.label_names
        if self.source == "conll":
            return conll.STANDARD_TAGS
        if self.source == "pku":
            return pku_ner.ZH_TAGS
        return None


def _glue(name: str, metric: str) -> TaskSpec:
    kind = "regression" if glue.get_glue_task(name).is_regression else "classification"
    return TaskSpec(name, "glue", kind, metric, name)


# The best checkpoint is the one with the highest `metric`: the GLUE paper's headline metric of each task.
TASKS: dict[str, TaskSpec] = {
    "sst2": _glue("sst2", "accuracy"),
    "cola": _glue("cola", "mcc"),
    "mrpc": _glue("mrpc", "f1"),
    "stsb": _glue("stsb", "spearman"),
    "qqp": _glue("qqp", "f1"),
    "mnli": _glue("mnli", "accuracy"),
    "qnli": _glue("qnli", "accuracy"),
    "rte": _glue("rte", "accuracy"),
    "wnli": _glue("wnli", "accuracy"),
    "squad_v1": TaskSpec("squad_v1", "squad", "span", "f1", "squad"),
    "squad_v2": TaskSpec("squad_v2", "squad", "span", "f1", "squad_v2"),
    "conll2003": TaskSpec("conll2003", "conll", "token", "entity_f1", "conll2003"),
    # Chinese: reviews in SST-2's TSV layout; People's Daily entities (PER/LOC/ORG) from the PKU tags.
    "zh_sentiment": _glue("zh_sentiment", "accuracy"),
    "zh_ner": TaskSpec("zh_ner", "pku", "token", "entity_f1", "zh_ner"),
}
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "squad": "squad_v1", "squadv1": "squad_v1", "squadv2": "squad_v2",
            "squad-v1": "squad_v1", "squad-v2": "squad_v2", "conll": "conll2003", "conll-2003": "conll2003",
            "zh-sentiment": "zh_sentiment", "zh-ner": "zh_ner"}


def get_task(name: str) -> TaskSpec:
    """A task by name (case-insensitive; "SST-2", "squad", "conll" are accepted)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise JaxbertError(f"unknown fine-tuning task {name!r}; use one of {', '.join(TASKS)}")
    return TASKS[key]


# ---- reading --------------------------------------------------------------------------------------

@dataclasses.dataclass
class TaskExamples:
    """The examples read from one file (GlueExample, SquadExample or ConllSentence), and rows skipped by reason."""

    spec: TaskSpec
    items: list[Any]
    skipped: Counter = dataclasses.field(default_factory=Counter)
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, items: list[Any]) -> TaskExamples:
        return TaskExamples(self.spec, items, Counter(self.skipped), self.source)


def _check_conll_tags(path: Path, sentences: Sequence[conll.ConllSentence], tags: Sequence[str],
                      on_error: str) -> tuple[list[conll.ConllSentence], int]:
    """Sentences whose tags all lie in `tags`; the first bad tag raises, naming its file and line."""
    known, kept, bad = set(tags), [], 0
    for sentence in sentences:
        wrong = next((i for i, t in enumerate(sentence.tags) if t not in known), None)
        if wrong is None:
            kept.append(sentence)
            continue
        if on_error == "raise":
            raise conll.ConllDataError(
                f"{path}, line {sentence.line + wrong}: NER tag {sentence.tags[wrong]!r} is not a CoNLL-2003 tag; "
                f"expected one of {', '.join(tags)} (or set data.on_error='skip')")
        bad += 1
    return kept, bad


def read_task_file(spec: TaskSpec, path: str | Path, on_error: str = "raise") -> TaskExamples:
    """Examples of a task's data file: a GLUE TSV, a SQuAD JSON, a CoNLL-2003 text file or PKU-tagged text.

    Bad rows (wrong column count, a label outside the task's set, a SQuAD answer that does not
    match its offset) raise a one-line error naming the file and line / question id; with
    `on_error="skip"` they are dropped and counted in `skipped`.
    """
    if on_error not in ("raise", "skip"):
        raise JaxbertError(f"config.data.on_error={on_error!r}; use 'raise' or 'skip'")
    path = storage.path(path)
    if spec.source == "glue":
        split = glue.read_glue_tsv(path, spec.glue, on_error=on_error)
        return TaskExamples(spec, split.examples, split.skipped, str(path))
    if spec.source == "squad":
        data = squad.read_squad(path, on_bad_answer=on_error)
        if spec.name == "squad_v1" and any(e.is_impossible for e in data.examples):
            raise squad.SquadDataError(f"{path} holds unanswerable (SQuAD v2.0) questions; use task squad_v2")
        return TaskExamples(spec, data.examples, data.skipped, str(path))
    if spec.source == "pku":
        return TaskExamples(spec, pku_ner.read_pku_ner(path), Counter(), str(path))
    sentences = conll.read_conll(path)
    kept, bad = _check_conll_tags(path, sentences, conll.STANDARD_TAGS, on_error)
    out = TaskExamples(spec, kept, Counter(), str(path))
    if bad:
        out.skipped["bad_label"] = bad
    return out


def held_out_split(examples: TaskExamples, eval_size: int | float, seed: int) -> tuple[TaskExamples, TaskExamples]:
    """Deterministically split examples into (train, held-out eval) when a task ships no dev file.

    `eval_size` >= 1 holds out that many; in (0, 1) that fraction. SQuAD questions are held out by
    whole article (title), so no context is seen in both parts; other tasks by example. Both
    parts keep the file order.
    """
    items = examples.items
    if examples.spec.source == "squad":
        groups = sorted({e.title for e in items}, key=[e.title for e in items].index)
    else:
        groups = list(range(len(items)))
    n = len(groups)
    count = int(eval_size) if eval_size >= 1 else round(float(eval_size) * n)
    if eval_size <= 0 or not 1 <= count < n:
        what = "articles" if examples.spec.source == "squad" else "examples"
        raise JaxbertError(f"config.data.eval_size={eval_size}: cannot hold out {count} of {n} {what}; "
                           f"use a count in [1, {n - 1}] or a fraction in (0, 1)")
    held = set(np.random.default_rng(seed).permutation(n)[:count].tolist())
    if examples.spec.source == "squad":
        held_titles = {groups[i] for i in held}
        is_held = [e.title in held_titles for e in items]
    else:
        is_held = [i in held for i in range(len(items))]
    return (examples.subset([x for x, h in zip(items, is_held, strict=True) if not h]),
            examples.subset([x for x, h in zip(items, is_held, strict=True) if h]))


# ---- encoding & scoring ----------------------------------------------------------------------------

@dataclasses.dataclass
class EncodedSplit:
    """Model inputs + labels, one row per model input (a SQuAD question may span several windows).

    `score(logits)` maps the model's task logits for all rows to the task's metrics.
    """

    arrays: dict[str, np.ndarray]
    score: Callable[[np.ndarray], dict[str, float]]
    num_examples: int
    skipped: Counter = dataclasses.field(default_factory=Counter)

    def __len__(self) -> int:
        return int(self.arrays["input_ids"].shape[0])


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    max_length: int = 128
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    null_score_diff_threshold: float = 0.0
    on_error: str = "raise"


def _encode_glue(examples: TaskExamples, tokenizer: Any, opts: EncodeOptions) -> EncodedSplit:
    spec = examples.spec
    arrays = glue.encode_glue(examples.items, tokenizer, max_length=opts.max_length, task=spec.glue)
    labels = arrays["labels"].copy()
    return EncodedSplit(arrays, lambda logits: task_metrics(spec.eval_name, logits, labels), len(examples),
                        Counter(examples.skipped))


def _squad_references(items: Sequence[squad.SquadExample]) -> list[dict[str, Any]]:
    return [{"id": e.id, "answers": [a.text for a in e.answers]} for e in items]


def _encode_squad(examples: TaskExamples, tokenizer: Any, opts: EncodeOptions) -> EncodedSplit:
    spec, items = examples.spec, list(examples.items)
    features = squad.squad_features(items, tokenizer, max_seq_len=opts.max_length, doc_stride=opts.doc_stride,
                                    max_query_len=opts.max_query_length, on_bad_answer=opts.on_error)
    # Questions dropped while windowing (an answer no token covers) are scored as missed, not forgotten.
    references = _squad_references(items)
    version_2 = spec.name == "squad_v2"

    def score(logits: np.ndarray) -> dict[str, float]:
        logits = np.asarray(logits, np.float32)
        predictions = squad.postprocess_squad(
            items, features, logits[..., 0], logits[..., 1], n_best_size=opts.n_best_size,
            max_answer_length=opts.max_answer_length, version_2=version_2,
            null_score_diff_threshold=opts.null_score_diff_threshold)
        return task_metrics(spec.eval_name, predictions.answers, references)

    skipped = Counter(examples.skipped) + features.skipped
    return EncodedSplit(features.model_inputs(), score, len(items), skipped)


def _encode_conll(examples: TaskExamples, tokenizer: Any, opts: EncodeOptions) -> EncodedSplit:
    items = list(examples.items)
    spec = examples.spec
    tags = spec.label_names()
    features = conll.encode_conll(items, tokenizer, tags, max_length=opts.max_length)
    gold = [list(s.tags) for s in items]

    def score(logits: np.ndarray) -> dict[str, float]:
        predicted = conll.predictions_to_words(np.asarray(logits), features.word_ids, features.num_words, tags)
        return task_metrics(spec.eval_name, predicted, gold)

    skipped = Counter(examples.skipped)
    truncated = int((features.truncated > 0).sum())
    if truncated:
        skipped["truncated_sentences"] = truncated
    return EncodedSplit(features.model_inputs(), score, len(items), skipped)


def encode_task(examples: TaskExamples, tokenizer: Any, opts: EncodeOptions | None = None) -> EncodedSplit:
    """Tokenize a task's examples into fixed-length arrays, with the function that scores logits on them."""
    if not examples.items:
        raise JaxbertError(f"no {examples.spec.name} examples to encode ({examples.source}); check the data file")
    opts = opts or EncodeOptions()
    encoders = {"glue": _encode_glue, "squad": _encode_squad, "conll": _encode_conll, "pku": _encode_conll}
    return encoders[examples.spec.source](examples, tokenizer, opts)
