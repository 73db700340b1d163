"""Correlation metrics for regression tasks (STS-B): Pearson and Spearman.

They match scipy.stats.pearsonr / spearmanr's statistic. An input that is constant has no defined
correlation: the result is nan, as in scipy (which also warns). Values are taken as float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError
from jaxbert.evaluate._inputs import as_pair


def _float_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = as_pair(x, y)
    if xs.size < 2:
        raise JaxbertError("a correlation needs at least 2 examples; pass more predictions")
    return xs.astype(np.float64), ys.astype(np.float64)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    # Scale by the largest deviation before the norm so that huge values cannot overflow the squares.
    x_scale = np.max(np.abs(xc))
    y_scale = np.max(np.abs(yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        x_unit = xc / (x_scale * np.linalg.norm(xc / x_scale))
        y_unit = yc / (y_scale * np.linalg.norm(yc / y_scale))
        r = float(np.clip(x_unit @ y_unit, -1.0, 1.0))
    # With two points the correlation is exactly +-1; round off the last-bit error.
    return float(np.round(r)) if x.size == 2 and not np.isnan(r) else r


def pearson(x: Any, y: Any) -> float:
    """Pearson's r of two equal-length sequences; nan if either is constant or holds nan/inf."""
    return _pearson(*_float_pair(x, y))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks (scipy's rankdata "average")."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Group boundaries: positions where the sorted value changes.
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    ends = np.append(starts[1:], values.size)
    # A group covering sorted positions [s, e) gets the mean of ranks s+1..e.
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(x: Any, y: Any) -> float:
    """Spearman's rho: Pearson's r of the average ranks; nan if either input is constant or holds nan."""
    xs, ys = _float_pair(x, y)
    if np.isnan(xs).any() or np.isnan(ys).any():
        return float("nan")
    return _pearson(average_ranks(xs), average_ranks(ys))
