"""Grain loader over a pretraining dataset: per-process shards, seeded shuffling, epochs, resumable state.

Pipeline (grain MapDataset, so every batch is a pure function of its index and resuming is exact):
  array_record source (records parsed directly) -> global shuffle(seed, reshuffled each epoch) -> repeat(num_epochs)
  -> [finite epochs: cut to a whole number of global batches] -> this process's slice [index::count]
  -> batch(global_batch / count) -> attention mask -> reader threads that work `prefetch_batches` ahead.

Each batch is a dict of host-local numpy int32 arrays: `input_ids`, `token_type_ids`, `attention_mask`
[B_local, T], plus `next_sentence_label` (nsp) or `sentence_order_label` (sop) [B_local].
`jaxbert.parallel.host_to_global` turns it into global `jax.Array`s for the train step's sharding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grain
import jax
import numpy as np

from jaxbert import storage
from jaxbert.data.tfds_builder import SPLIT, read_dataset_meta
from jaxbert.errors import JaxbertError

# A saved position is only valid for the same stream of global batches; the host count may differ.
_STATE_KEYS = ("seed", "shuffle", "num_epochs", "global_batch_size", "num_examples")


class LoaderError(JaxbertError, ValueError):
    """A loader option or a restored loader state does not fit the dataset; the message says how to fix it."""


class PretrainingLoader(grain.DatasetIterator):
    """Iterator of host-local pretraining batches with `get_state()` / `set_state()` (JSON-able dicts).

    It is a grain DatasetIterator, so `grain.checkpoint.CheckpointSave(loader)` stores it in an Orbax
    checkpoint. Build it with `make_pretraining_loader`.
    """

    def __init__(self, iterator: grain.DatasetIterator, settings: dict[str, Any], meta: dict[str, Any],
                 batches_per_epoch: int | None):
        super().__init__(iterator)
        self._settings = settings
        self.meta = meta  # the dataset's jaxbert_pretraining.json: options (special ids, format...) and summary
        self.batches_per_epoch = batches_per_epoch  # batches each process gets per epoch when num_epochs is set

    @property
    def local_batch_size(self) -> int:
        return self._settings["global_batch_size"] // self._settings["shard_count"]

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self._parent)

    def get_state(self) -> dict[str, Any]:
        """The position in the stream plus the settings it is only valid for (JSON-serializable).

        The pipeline's position counts the batches of this process's slice, which holds one block of every
        global batch: it is the number of global batches served, the same on every process and for any
        process count. `shard_index` / `shard_count` are recorded for reference only.
        """
        return {"pipeline": self._parent.get_state(), **self._settings}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Resume at a saved position, whatever process count saved it (the next batch is the next global
        batch's block for this process); raises LoaderError if the state came from other loader settings."""
        missing = [k for k in ("pipeline", *_STATE_KEYS) if k not in state]
        if missing:
            raise LoaderError(f"loader state lacks {', '.join(missing)}; restore a state saved by get_state()")
        changed = [f"{k}={state[k]!r} (now {self._settings[k]!r})" for k in _STATE_KEYS
                   if state[k] != self._settings[k]]
        if changed:
            raise LoaderError(f"loader state was saved with {', '.join(changed)}; resume with the same data, "
                              "seed and global batch size")
        self._parent.set_state(state["pipeline"])


def make_pretraining_loader(
    data_dir: str | os.PathLike,
    global_batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = None,
    *,
    shard_index: int | None = None,
    shard_count: int | None = None,
    num_threads: int = 4,
    prefetch_batches: int = 4,
) -> PretrainingLoader:
    """A resumable iterator of this process's share of each global batch of the dataset at `data_dir`.

    `shard_index` / `shard_count` default to `jax.process_index()` / `jax.process_count()`; each process
    gets `global_batch_size // shard_count` examples a batch: its contiguous block of the global batch.
    `num_epochs=None` repeats forever (each epoch shuffled anew); with a number, the stream ends after that
    many epochs, cut to whole global batches so every process yields the same number of batches.
    A dataset on gs:// is read from a local copy (array_record reads local files only), made once per
    host and keyed by the files' checksums.
    """
    meta = read_dataset_meta(data_dir)
    data_dir = storage.local_copy(data_dir)
    shard_index = jax.process_index() if shard_index is None else int(shard_index)
    shard_count = jax.process_count() if shard_count is None else int(shard_count)
    if not 0 <= shard_index < shard_count:
        raise LoaderError(f"shard_index={shard_index} must lie in [0, shard_count={shard_count})")
    if global_batch_size <= 0 or global_batch_size % shard_count:
        raise LoaderError(f"global_batch_size={global_batch_size} must be a positive multiple of the process "
                          f"count {shard_count}")
    if num_epochs is not None and num_epochs < 1:
        raise LoaderError(f"num_epochs={num_epochs} must be >= 1, or None to repeat forever")
    if not 0 <= seed < 2**32:
        raise LoaderError(f"seed={seed} must lie in [0, 2**32) for grain's shuffle")

    source = _raw_data_source(data_dir)
    num_examples = len(source)
    if num_examples < global_batch_size:
        raise LoaderError(f"{data_dir} holds {num_examples} examples, fewer than one global batch of "
                          f"{global_batch_size}; lower the batch size or add corpus text")
    ds = grain.MapDataset.source(source).map(_record_decoder(meta["fields"]))
    if shuffle:
        ds = ds.shuffle(seed=seed)
    ds = ds.repeat(num_epochs)
    batches_per_epoch = None
    if num_epochs is not None:
        total = num_examples * num_epochs // global_batch_size * global_batch_size
        ds = ds[:total]
        batches_per_epoch = total // global_batch_size // num_epochs
    # Process p takes rows [p * local, (p + 1) * local) of every global batch, so the global array assembled
    # from the processes' shards holds the rows in the one-process order and the run does not depend on
    # how many hosts feed it (masks and dropout are drawn by position in the global batch).
    ds = ds.batch(global_batch_size // shard_count, drop_remainder=True)[shard_index::shard_count]
    ds = ds.map(_add_attention_mask)
    # Reader threads decode and batch up to `prefetch_batches` batches ahead of the one being consumed,
    # so the train loop finds the next batch ready instead of waiting on the host.
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_batches))
    settings = {"seed": seed, "shuffle": shuffle, "num_epochs": num_epochs, "global_batch_size": global_batch_size,
                "shard_index": shard_index, "shard_count": shard_count, "num_examples": num_examples}
    return PretrainingLoader(iter(it_ds), settings, meta, batches_per_epoch)


def _raw_data_source(data_dir: str | os.PathLike) -> Any:
    """The dataset's records as serialized bytes (decoded by `_record_decoder`, ~4x faster than TFDS's)."""
    import tensorflow_datasets as tfds  # deferred: importing the loader module stays cheap

    try:
        builder = tfds.builder_from_directory(os.fspath(data_dir))
        return builder.as_data_source(split=SPLIT, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    except Exception as e:  # TFDS raises assorted types for a damaged directory
        raise LoaderError(f"{data_dir}: cannot open the array_record dataset ({type(e).__name__}: {e}); "
                          "rebuild it with build_pretraining_dataset") from e


def _record_decoder(fields: Mapping[str, Sequence[int]]) -> Callable[[bytes], dict[str, np.ndarray]]:
    """Decode one serialized record of int32 fields (TFDS stores them as tf.Example int64 lists)."""
    from tensorflow_datasets.proto import tf_example_pb2

    parse = tf_example_pb2.Example.FromString
    arrays = [name for name, shape in fields.items() if shape]
    scalars = [name for name, shape in fields.items() if not shape]

    def decode(record: bytes) -> dict[str, np.ndarray]:
        feature = parse(record).features.feature
        out = {name: np.array(feature[name].int64_list.value, np.int32) for name in arrays}
        for name in scalars:
            out[name] = np.int32(feature[name].int64_list.value[0])
        return out

    return decode


def _add_attention_mask(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Replace `length` by the attention mask (real tokens are a prefix: padding only at the end)."""
    batch = {name: np.asarray(x, np.int32) for name, x in batch.items()}
    length = batch.pop("length")
    positions = np.arange(batch["input_ids"].shape[1], dtype=np.int32)
    batch["attention_mask"] = (positions[None, :] < length[:, None]).astype(np.int32)
    return batch
