"""Input checks shared by the metric functions: one-dimensional, equal length, not empty."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError


def as_vector(name: str, values: Any) -> np.ndarray:
    """`values` as a non-empty 1-D numpy array, or a JaxbertError naming `name`."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise JaxbertError(f"{name} must be a 1-D sequence, got shape {array.shape}; pass one value per example")
    if array.size == 0:
        raise JaxbertError(f"{name} is empty; pass at least one example")
    return array


def as_pair(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and references as two 1-D arrays of the same, non-zero length."""
    preds = as_vector("predictions", predictions)
    refs = as_vector("references", references)
    if preds.shape != refs.shape:
        raise JaxbertError(
            f"predictions has {preds.size} values but references has {refs.size}; pass one prediction per reference"
        )
    return preds, refs
