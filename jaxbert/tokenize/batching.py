"""Turns per-text token ids into a padded numpy batch with the BERT template `[CLS] A [SEP] (B [SEP])`
or XLNet's `A <sep> (B <sep>) <cls>` (padded on the left, so <cls> is always the last token).

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

    pad_left = False

    def num_added(self, pair: bool) -> int:
        return 3 if pair else 2

    def wrap(self, a: list[int], b: list[int] | None = None) -> list[int]:
        """Token ids with the template's special tokens around them."""
        return [self.cls, *a, self.sep] + ([*b, self.sep] if b is not None else [])

    def row(self, a: Encoded, b: Encoded | None, keep_a: int, keep_b: int):
        return _bert_row(self, a, b, keep_a, keep_b)


@dataclass(frozen=True)
class XLNetTemplate(BertTemplate):
    """XLNetTokenizer's layout: `A <sep> <cls>` / `A <sep> B <sep> <cls>`, segment ids 0 / 1 and 2 for
    <cls>, padding on the left (segment id 0, as transformers 5 pads)."""

    pad_left = True

    def wrap(self, a: list[int], b: list[int] | None = None) -> list[int]:
        return [*a, self.sep] + ([*b, self.sep] if b is not None else []) + [self.cls]

    def row(self, a: Encoded, b: Encoded | None, keep_a: int, keep_b: int):
        ids, types, special, offsets = _bert_row(self, a, b, keep_a, keep_b)
        # BERT's row less its leading [CLS], with <cls> (segment 2) appended instead.
        return (ids[1:] + [self.cls], types[1:] + [2], special[1:] + [1],
                None if offsets is None else offsets[1:] + [(0, 0)])


def _bert_row(template: BertTemplate, a: Encoded, b: Encoded | None, keep_a: int, keep_b: int):
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
        rows.append(template.row(a, b, keep_a, keep_b))
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
        at = slice(width - k, width) if template.pad_left else slice(0, k)
        ids[i, at] = r_ids
        types[i, at] = r_types
        mask[i, at] = 1
        special[i, at] = r_special
        if offsets is not None and r_offsets is not None and k:
            offsets[i, at] = r_offsets
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if offsets is not None:
        out["offset_mapping"] = offsets
    if return_special_tokens_mask:
        out["special_tokens_mask"] = special
    return out
