"""Turns per-text token ids into a padded numpy batch with the BERT template `[CLS] A [SEP] (B [SEP])`.

Used by tokenizers whose backend has no batch post-processor of its own (SentencePiece); it follows
the `tokenizers` library's rules (longest-first truncation, right padding, (0, 0) offsets for added
tokens) so every kind gives the same shapes for the same call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxbert.tokenize.common import check_ragged, longest_first

Offsets = list[tuple[int, int]]


@dataclass(frozen=True)
class Encoded:
    """One text's token ids (no special tokens) and, when asked for, their character spans."""

    ids: list[int]
    offsets: Offsets | None = None


@dataclass(frozen=True)
class BertTemplate:
    """Where the template's special tokens go: `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`."""

    cls: int
    sep: int
    pad: int

    def num_added(self, pair: bool) -> int:
        return 3 if pair else 2


def _row(template: BertTemplate, a: Encoded, b: Encoded | None, keep_a: int, keep_b: int):
    ids = [template.cls, *a.ids[:keep_a], template.sep]
    types = [0] * len(ids)
    special = [1] + [0] * keep_a + [1]
    offsets = None
    if a.offsets is not None:
        offsets = [(0, 0), *a.offsets[:keep_a], (0, 0)]
    if b is not None:
        ids += [*b.ids[:keep_b], template.sep]
        types += [1] * (keep_b + 1)
        special += [0] * keep_b + [1]
        if offsets is not None:
            offsets += [*(b.offsets or [])[:keep_b], (0, 0)]
    return ids, types, special, offsets


def build_batch(
    template: BertTemplate,
    firsts: list[Encoded],
    seconds: list[Encoded] | None,
    *,
    max_length: int,
    mode: str,
    truncation: bool,
    return_offsets: bool,
    return_special_tokens_mask: bool,
) -> dict[str, np.ndarray]:
    """The contract's dict of int32 [N, T] arrays (plus `offset_mapping` [N, T, 2] and the mask when asked)."""
    pair = seconds is not None
    budget = max_length - template.num_added(pair)
    rows = []
    for i, a in enumerate(firsts):
        b = seconds[i] if seconds is not None else None
        n_a, n_b = len(a.ids), len(b.ids) if b is not None else 0
        if truncation:
            keep_a, keep_b = longest_first(n_a, n_b, budget) if b is not None else (min(n_a, budget), 0)
        else:
            keep_a, keep_b = n_a, n_b
        rows.append(_row(template, a, b, keep_a, keep_b))
    lengths = [len(r[0]) for r in rows]
    check_ragged(lengths, mode, max_length, truncation)
    if mode == "max_length":
        width = max_length
    else:
        width = max(lengths, default=0)
    n = len(rows)
    ids = np.full((n, width), template.pad, dtype=np.int32)
    types = np.zeros((n, width), dtype=np.int32)
    mask = np.zeros((n, width), dtype=np.int32)
    special = np.ones((n, width), dtype=np.int32)
    offsets = np.zeros((n, width, 2), dtype=np.int32) if return_offsets else None
    for i, (r_ids, r_types, r_special, r_offsets) in enumerate(rows):
        k = len(r_ids)
        ids[i, :k] = r_ids
        types[i, :k] = r_types
        mask[i, :k] = 1
        special[i, :k] = r_special
        if offsets is not None and r_offsets is not None and k:
            offsets[i, :k] = r_offsets
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if offsets is not None:
        out["offset_mapping"] = offsets
    if return_special_tokens_mask:
        out["special_tokens_mask"] = special
    return out
