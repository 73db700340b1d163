"""Sequence packing: several examples in one row of `seq_len` tokens, told apart by segment ids.

Rows are filled by streaming best fit: up to `open_rows` rows stay open; each example goes into the open
row with the least free space that still holds it (a new row when none does), and when too many rows
are open the fullest one is closed. A row also closes when it is full or holds `max_per_row` examples.
Everything is deterministic in the order examples arrive.

A packed row holds its examples back to back from position 0: `segment_ids` numbers them 1, 2, ... and
marks padding 0, so the model (`jaxbert.model.packing`) blocks attention between them, restarts their
positions and reads each one's [CLS]; per-example fields (a pretraining pair label, a fine-tuning
label) become [max_per_row] arrays, slot k for example k + 1 (0 in slots no example fills).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError

SEGMENT_IDS = "segment_ids"
OPEN_ROWS = 64  # rows open at once: enough for best fit to find a near-exact gap for most examples


class PackingError(JaxbertError, ValueError):
    """A packing option is out of range; the message names it and the fix."""


def default_max_per_row(seq_len: int) -> int:
    """Examples a row may hold when not set: one per 16 tokens (8 at 128, 32 at 512)."""
    return max(2, seq_len // 16)


def check_packing(seq_len: int, max_per_row: int, open_rows: int = OPEN_ROWS) -> None:
    if max_per_row < 2:
        raise PackingError(f"max_examples_per_row={max_per_row}: a packed row needs room for at least 2 examples")
    if max_per_row > seq_len:
        raise PackingError(f"max_examples_per_row={max_per_row} exceeds the row length {seq_len}; lower it")
    if open_rows < 1:
        raise PackingError(f"open_rows={open_rows} must be >= 1")


class RowPacker:
    """Streaming best-fit assignment of items (with their lengths) to rows; see the module docstring."""

    def __init__(self, seq_len: int, max_per_row: int, open_rows: int = OPEN_ROWS) -> None:
        check_packing(seq_len, max_per_row, open_rows)
        self.seq_len, self.max_per_row, self.open_rows = seq_len, max_per_row, open_rows
        self._rows: dict[int, list[Any]] = {}  # row id -> items
        self._free: list[tuple[int, int]] = []  # sorted (free tokens, row id) of the open rows
        self._next_id = itertools.count()

    def add(self, length: int, item: Any) -> list[list[Any]]:
        """Place one item; returns the rows this closed (each a list of items in placement order)."""
        if not 0 < length <= self.seq_len:
            raise PackingError(f"an example of {length} tokens does not fit a row of {self.seq_len}")
        closed: list[list[Any]] = []
        at = bisect.bisect_left(self._free, (length, -1))
        if at < len(self._free):
            free, row = self._free.pop(at)
        else:
            free, row = self.seq_len, next(self._next_id)
            self._rows[row] = []
        self._rows[row].append(item)
        free -= length
        if free == 0 or len(self._rows[row]) == self.max_per_row:
            closed.append(self._rows.pop(row))
        else:
            bisect.insort(self._free, (free, row))
        if len(self._free) > self.open_rows:
            _, fullest = self._free.pop(0)
            closed.append(self._rows.pop(fullest))
        return closed

    def finish(self) -> list[list[Any]]:
        """Close every open row, in the order they were opened."""
        rows = [self._rows[r] for r in sorted(self._rows)]
        self._rows, self._free = {}, []
        return rows


def pack_rows(items: Iterable[tuple[int, Any]], seq_len: int, max_per_row: int,
              open_rows: int = OPEN_ROWS) -> Iterator[list[Any]]:
    """Rows (lists of items) from (length, item) pairs, by `RowPacker`."""
    packer = RowPacker(seq_len, max_per_row, open_rows)
    for length, item in items:
        yield from packer.add(length, item)
    yield from packer.finish()


def join_row(examples: Sequence[Mapping[str, np.ndarray]], seq_len: int, max_per_row: int, pad_id: int,
             token_fields: Sequence[str], example_fields: Sequence[str], lengths: Sequence[int]
             ) -> dict[str, np.ndarray]:
    """One packed row from `examples` (each holding `lengths[i]` real tokens at the front of its arrays).

    `token_fields` ([T] arrays) are concatenated (input_ids padded with `pad_id`, the rest with 0);
    `example_fields` (scalars) become [max_per_row] arrays; `segment_ids` and `length` are added.
    """
    out: dict[str, np.ndarray] = {}
    for name in token_fields:
        dtype = np.asarray(examples[0][name]).dtype
        out[name] = np.full(seq_len, pad_id if name == "input_ids" else 0, dtype)
    segments = np.zeros(seq_len, np.int32)
    at = 0
    for k, (example, n) in enumerate(zip(examples, lengths, strict=True)):
        for name in token_fields:
            out[name][at:at + n] = np.asarray(example[name])[:n]
        segments[at:at + n] = k + 1
        at += n
    for name in example_fields:
        values = [np.asarray(e[name]) for e in examples]
        column = np.zeros(max_per_row, values[0].dtype)
        column[:len(values)] = values
        out[name] = column
    out[SEGMENT_IDS] = segments
    out["length"] = np.int32(at)
    return out


def pack_arrays(arrays: Mapping[str, np.ndarray], lengths: np.ndarray, seq_len: int, max_per_row: int,
                pad_id: int, open_rows: int = OPEN_ROWS) -> dict[str, np.ndarray]:
    """Packed [R, ...] arrays from unpacked [N, T] / [N] ones (e.g. fine-tuning rows; `lengths` [N] real tokens).

    [N, T] arrays are token fields, [N] arrays per-example fields ([R, max_per_row] after packing); an
    `attention_mask` comes out as the packed rows' real-token mask, and `segment_ids` [R, T] is added.
    """
    token_fields = [k for k, v in arrays.items() if np.ndim(v) == 2 and k != "attention_mask"]
    example_fields = [k for k, v in arrays.items() if np.ndim(v) == 1]
    rows = list(pack_rows(((int(n), i) for i, n in enumerate(lengths)), seq_len, max_per_row, open_rows))
    packed = [join_row([{k: arrays[k][i] for k in token_fields + example_fields} for i in row], seq_len, max_per_row,
                       pad_id, token_fields, example_fields, [int(lengths[i]) for i in row]) for row in rows]
    out = {k: np.stack([r[k] for r in packed]) for k in packed[0]}
    length = out.pop("length")
    if "attention_mask" in arrays:
        out["attention_mask"] = (np.arange(seq_len)[None, :] < length[:, None]).astype(arrays["attention_mask"].dtype)
    return out


def padding_share(rows: int, seq_len: int, real_tokens: int) -> float:
    """The share of a dataset's positions that hold padding."""
    total = rows * seq_len
    return (total - real_tokens) / total if total else 0.0
