"""`task_metrics`: each benchmark task's official metrics, under the names `jaxbert eval` prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError
from jaxbert.evaluate.classification import accuracy, f1, matthews_corrcoef
from jaxbert.evaluate.correlation import pearson, spearman
from jaxbert.evaluate.entities import entity_scores
from jaxbert.evaluate.squad import squad_v1, squad_v2


def _labels(predictions: Any) -> np.ndarray:
    """Class ids from predicted labels [N] or from scores / logits [N, C] (their argmax)."""
    preds = np.asarray(predictions)
    return preds.argmax(axis=-1) if preds.ndim == 2 else preds


def _scores(predictions: Any) -> np.ndarray:
    """Regression outputs [N] or [N, 1] as [N]."""
    preds = np.asarray(predictions)
    return preds[:, 0] if preds.ndim == 2 and preds.shape[1] == 1 else preds


def _accuracy(preds: Any, refs: Any) -> dict[str, float]:
    return {"accuracy": accuracy(_labels(preds), refs)}


def _accuracy_f1(preds: Any, refs: Any) -> dict[str, float]:
    labels = _labels(preds)
    return {"accuracy": accuracy(labels, refs), "f1": f1(labels, refs)}


def _mcc(preds: Any, refs: Any) -> dict[str, float]:
    return {"mcc": matthews_corrcoef(_labels(preds), refs)}


def _correlations(preds: Any, refs: Any) -> dict[str, float]:
    scores = _scores(preds)
    return {"pearson": pearson(scores, refs), "spearman": spearman(scores, refs)}


def _squad_v2(preds: Any, refs: Any, no_answer_probs: Any = None) -> dict[str, float]:
    official = squad_v2(preds, refs, no_answer_probs)
    # The official keys, with "exact" spelled as the CLI's "exact_match"; "total" becomes "examples".
    return {k.replace("exact", "exact_match"): v for k, v in official.items() if k != "total"}


def _entities(preds: Any, refs: Any) -> dict[str, float]:
    scores = entity_scores(preds, refs)
    return {"entity_f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}


# GLUE's official metrics per task (the GLUE paper, Table 1); SQuAD and CoNLL-2003 as their own scripts.
TASKS: dict[str, Callable[..., dict[str, float]]] = {
    "sst2": _accuracy,
    "qnli": _accuracy,
    "rte": _accuracy,
    "wnli": _accuracy,
    "mnli": _accuracy,
    "mnli_matched": _accuracy,
    "mnli_mismatched": _accuracy,
    "mrpc": _accuracy_f1,
    "qqp": _accuracy_f1,
    "cola": _mcc,
    "stsb": _correlations,
    "squad": squad_v1,
    "squad_v2": _squad_v2,
    "conll2003": _entities,
    "zh_sentiment": _accuracy,
    "zh_ner": _entities,  # character-level BIO tags, scored like CoNLL (seqeval's rules)
}
_ALIASES = {"squadv1": "squad", "squadv11": "squad", "squadv20": "squad_v2", "mnlimm": "mnli_mismatched"}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in "-_. ")


_BY_SQUASHED = {_squash(name): name for name in TASKS} | _ALIASES


def task_name(name: str) -> str:
    """The canonical task name; case, "-", "_" and "." are ignored ("SST-2" -> "sst2", "SQuAD v2" -> "squad_v2")."""
    try:
        return _BY_SQUASHED[_squash(name)]
    except KeyError:
        raise JaxbertError(f"unknown task {name!r}; use one of {', '.join(TASKS)}") from None


def task_metrics(
    task: str,
    predictions: Any,
    references: Any,
    *,
    no_answer_probs: Mapping[str, float] | Sequence[float] | None = None,
) -> dict[str, float]:
    """The task's official metrics plus "examples" (the number of references scored).

    sst2 / qnli / rte / wnli / mnli: accuracy; mrpc / qqp: accuracy and f1 (positive class 1);
    cola: mcc; stsb: pearson and spearman; squad: exact_match and f1 (0-100);
    squad_v2: those plus HasAns_* / NoAns_* splits and, given `no_answer_probs`, best_* thresholds;
    conll2003, zh_ner: entity_f1, precision, recall (entity level, conlleval rules); zh_sentiment: accuracy.
    Classification predictions may be labels [N] or logits [N, C]; references are gold labels,
    scores, SQuAD {"id", "answers"} mappings or tag sequences, as the task needs.
    """
    name = task_name(task)
    if no_answer_probs is not None and name != "squad_v2":
        raise JaxbertError(f"no_answer_probs only applies to squad_v2, not {name}; drop it")
    options = {"no_answer_probs": no_answer_probs} if name == "squad_v2" else {}
    metrics = TASKS[name](predictions, references, **options)
    metrics["examples"] = len(references)
    return metrics
