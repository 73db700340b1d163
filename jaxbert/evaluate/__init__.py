"""Evaluation metrics as pure functions of predictions and references (numpy only).

GLUE classification / regression, SQuAD v1.1 / v2.0 and entity-level sequence labelling metrics,
each matching its reference implementation; `task_metrics` picks a task's official set.
"""

from jaxbert.evaluate.classification import accuracy, f1, matthews_corrcoef
from jaxbert.evaluate.correlation import average_ranks, pearson, spearman
from jaxbert.evaluate.entities import entity_report, entity_scores, get_entities
from jaxbert.evaluate.squad import (
    exact_match,
    find_best_thresh,
    flatten_squad,
    normalize_answer,
    squad_v1,
    squad_v2,
    token_f1,
)
from jaxbert.evaluate.tasks import TASKS, task_metrics, task_name

__all__ = [
    "TASKS",
    "accuracy",
    "average_ranks",
    "entity_report",
    "entity_scores",
    "exact_match",
    "f1",
    "find_best_thresh",
    "flatten_squad",
    "get_entities",
    "matthews_corrcoef",
    "normalize_answer",
    "pearson",
    "spearman",
    "squad_v1",
    "squad_v2",
    "task_metrics",
    "task_name",
    "token_f1",
]
