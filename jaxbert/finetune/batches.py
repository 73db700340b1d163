"""A resumable iterator of shuffled training batches over in-memory task arrays.

Epochs are consecutive seeded permutations of the rows, read as one endless stream, so every
batch is full and no row is dropped; the state is the position in that stream (JSON), which the
train loop's checkpoints save and restore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxbert.data.packing import pack_arrays, padding_share
from jaxbert.errors import JaxbertError


def pack_training_rows(arrays: Mapping[str, np.ndarray], max_per_row: int, pad_id: int
                       ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Training rows with several examples each (`jaxbert.data.packing.pack_arrays`), and the padding
    shares before and after (`padding_before`, `padding_after`, `rows_before`, `rows_after`)."""
    lengths = np.asarray(arrays["attention_mask"]).sum(axis=1)
    n, t = np.shape(arrays["input_ids"])
    packed = pack_arrays(arrays, lengths, t, max_per_row, pad_id)
    rows = int(packed["input_ids"].shape[0])
    real = int(lengths.sum())
    return packed, {"rows_before": n, "rows_after": rows, "padding_before": padding_share(n, t, real),
                    "padding_after": padding_share(rows, t, real)}


class EpochBatches:
    """Yields this process's rows of each global batch of `arrays` (dict of [N, ...] numpy arrays)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], global_batch_size: int, seed: int = 0,
                 shard_index: int | None = None, shard_count: int | None = None) -> None:
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.num_rows = int(next(iter(self.arrays.values())).shape[0])
        self.shard_index = jax.process_index() if shard_index is None else int(shard_index)
        self.shard_count = jax.process_count() if shard_count is None else int(shard_count)
        if global_batch_size <= 0 or global_batch_size % self.shard_count:
            raise JaxbertError(f"config.train.batch_size={global_batch_size} must be a positive multiple of the "
                               f"process count {self.shard_count}")
        if self.num_rows == 0:
            raise JaxbertError("no training rows; check data.train")
        self.global_batch_size = global_batch_size
        self.seed = int(seed)
        self.position = 0  # rows of the endless stream consumed so far

    @property
    def local_batch_size(self) -> int:
        return self.global_batch_size // self.shard_count

    def _rows(self, start: int, count: int) -> np.ndarray:
        out = []
        while count > 0:
            epoch, offset = divmod(start, self.num_rows)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)
            take = order[offset:offset + count]
            out.append(take)
            start, count = start + len(take), count - len(take)
        return np.concatenate(out)

    def __iter__(self) -> EpochBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rows = self._rows(self.position, self.global_batch_size)
        self.position += self.global_batch_size
        local = rows[self.shard_index * self.local_batch_size:(self.shard_index + 1) * self.local_batch_size]
        return {k: v[local] for k, v in self.arrays.items()}

    def get_state(self) -> dict[str, Any]:
        return {"position": self.position, "seed": self.seed, "num_rows": self.num_rows,
                "global_batch_size": self.global_batch_size}

    def set_state(self, state: Mapping[str, Any]) -> None:
        for key in ("seed", "num_rows", "global_batch_size"):
            if state.get(key) != getattr(self, key):
                raise JaxbertError(f"the checkpoint's data position was saved with {key}={state.get(key)!r}, now "
                                   f"{getattr(self, key)!r}; resume with the same data, seed and batch size")
        self.position = int(state["position"])
