"""The unit a checkpoint converter plans with: one of our modules and where a foreign format keeps it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanItem:
    """One of our modules and the foreign module(s)/scope(s) holding it: one per layer when stacked on L."""

    ours: str
    theirs: tuple[str, ...]
    kind: str
    stacked: bool = False
    fallback: str | None = None  # the scope to read when `theirs` is absent (ELECTRA's shared TF embeddings)
