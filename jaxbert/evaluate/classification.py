"""Classification metrics: accuracy, F1 (binary / macro / micro) and Matthews correlation.

Each matches scikit-learn's function of the same name with its default arguments, including the
degenerate cases (an F1 with no positive prediction nor label is 0, an MCC with a zero
denominator is 0), but takes (predictions, references) in that order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError
from jaxbert.evaluate._inputs import as_pair

AVERAGES = ("binary", "macro", "micro")


def accuracy(predictions: Any, references: Any) -> float:
    """Fraction of predictions equal to their reference label."""
    preds, refs = as_pair(predictions, references)
    return float(np.mean(preds == refs))


def _confusion(preds: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, C) with labels the sorted union and C[i, j] = #(reference labels[i], prediction labels[j])."""
    labels, codes = np.unique(np.concatenate([refs, preds]), return_inverse=True)
    n = refs.size
    matrix = np.zeros((labels.size, labels.size), dtype=np.int64)
    np.add.at(matrix, (codes[:n], codes[n:]), 1)
    return labels, matrix


def _f1_from_counts(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    # 2tp / (predicted + actual); 0 where a label is neither predicted nor present (sklearn's zero_division).
    denom = (predicted + actual).astype(np.float64)
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def f1(predictions: Any, references: Any, average: str = "binary", pos_label: Any = 1) -> float:
    """F1 score; `average` is "binary" (F1 of `pos_label`), "macro" (mean per-label F1) or "micro".

    Labels are the union of the values in predictions and references. "binary" accepts at most two
    distinct labels and, where there are two, `pos_label` must be one of them; "micro" pools every
    label's counts, which for single-label data equals the accuracy.
    """
    if average not in AVERAGES:
        raise JaxbertError(f"unknown F1 average {average!r}; use one of {', '.join(AVERAGES)}")
    preds, refs = as_pair(predictions, references)
    labels, matrix = _confusion(preds, refs)
    tp = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    if average == "micro":
        return float(_f1_from_counts(tp.sum(), predicted.sum(), actual.sum()))
    if average == "macro":
        return float(np.mean(_f1_from_counts(tp, predicted, actual)))
    if labels.size > 2:
        raise JaxbertError(
            f"binary F1 got {labels.size} distinct labels ({', '.join(map(str, labels[:5]))}...); "
            'use average="macro" or "micro" for multi-class data'
        )
    hits = np.flatnonzero(labels == pos_label)
    if hits.size == 0:
        if labels.size == 2:
            raise JaxbertError(
                f"pos_label={pos_label!r} is not one of the labels {labels.tolist()}; "
                "pass pos_label=<the positive label>"
            )
        return 0.0  # the positive class never occurs: no true positive, F1 is 0 as in scikit-learn
    i = hits[0]
    return float(_f1_from_counts(tp[i], predicted[i], actual[i]))


def matthews_corrcoef(predictions: Any, references: Any) -> float:
    """Matthews correlation coefficient, multi-class form (Gorodkin's R_K); 0 when undefined."""
    preds, refs = as_pair(predictions, references)
    _, matrix = _confusion(preds, refs)
    actual = matrix.sum(axis=1, dtype=np.float64)
    predicted = matrix.sum(axis=0, dtype=np.float64)
    correct = float(np.trace(matrix))
    n = float(refs.size)
    cov_ref_pred = correct * n - actual @ predicted
    cov_pred_pred = n * n - predicted @ predicted
    cov_ref_ref = n * n - actual @ actual
    denom = cov_pred_pred * cov_ref_ref
    if denom == 0:
        return 0.0  # one side is a single class: the correlation is undefined, reported as 0 like sklearn
    return float(cov_ref_pred / np.sqrt(denom))
