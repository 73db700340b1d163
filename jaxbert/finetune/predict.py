"""Batched task-head inference over encoded arrays, with one compiled shape per batch size."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.model import build_model

INPUT_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


@functools.partial(jax.jit, static_argnames=("config",))
def task_logits(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
                token_type_ids: jax.Array) -> jax.Array:
    """The task head's logits of one batch (dropout off)."""
    types = token_type_ids if config.type_vocab_size > 0 else None
    out = build_model(config).apply({"params": params}, input_ids, attention_mask, types, deterministic=True)
    return out.logits[config.task]


def predict_logits(config: ModelConfig, params: Any, arrays: Mapping[str, np.ndarray],
                   batch_size: int = 64) -> np.ndarray:
    """Task logits for every row of `arrays` (input_ids, attention_mask[, token_type_ids]), as numpy.

    The last batch is padded to `batch_size` rows (then dropped), so one compiled shape serves all.
    """
    if not config.task:
        raise JaxbertError("this model has no task head (config.task is empty); fine-tune it first "
                           "with `jaxbert finetune`, or load a fine-tuned checkpoint")
    ids = np.asarray(arrays["input_ids"], np.int32)
    n = ids.shape[0]
    mask = np.asarray(arrays.get("attention_mask", (ids != config.pad_token_id)), np.int32)
    types = np.asarray(arrays.get("token_type_ids", np.zeros_like(ids)), np.int32)
    out = []
    for lo in range(0, n, batch_size):
        rows = [x[lo:lo + batch_size] for x in (ids, mask, types)]
        short = batch_size - rows[0].shape[0]
        if short:
            rows = [np.pad(x, ((0, short), (0, 0))) for x in rows]
        logits = task_logits(config, params, *(jnp.asarray(x) for x in rows))
        out.append(np.asarray(logits)[: batch_size - short])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def predict_logits_sharded(config: ModelConfig, params: Any, arrays: Mapping[str, np.ndarray], batch_size: int,
                           mesh: jax.sharding.Mesh) -> np.ndarray:
    """Like `predict_logits`, with params sharded on `mesh` and batches split across processes.

    Every process passes the same `arrays`; each feeds its share of every batch, and all get the
    full logits back. `batch_size` is rounded up to a multiple of the data-parallel size.
    """
    from jax.experimental import multihost_utils

    from jaxbert.parallel import data_parallel_size, host_to_global

    step = math.lcm(data_parallel_size(mesh), jax.process_count())
    batch_size = -(-batch_size // step) * step
    local = batch_size // jax.process_count()
    me = jax.process_index()
    ids = np.asarray(arrays["input_ids"], np.int32)
    n = ids.shape[0]
    fields = {"input_ids": ids,
              "attention_mask": np.asarray(arrays.get("attention_mask", ids != config.pad_token_id), np.int32),
              "token_type_ids": np.asarray(arrays.get("token_type_ids", np.zeros_like(ids)), np.int32)}
    out = []
    # No activation constraints: the compiler lays activations out from the params' and batch's shardings.
    for lo in range(0, n, batch_size):
        rows = {k: v[lo:lo + batch_size] for k, v in fields.items()}
        short = batch_size - rows["input_ids"].shape[0]
        if short:
            rows = {k: np.pad(v, ((0, short), (0, 0))) for k, v in rows.items()}
        mine = {k: v[me * local:(me + 1) * local] for k, v in rows.items()}
        batch = host_to_global(mine, mesh)
        logits = task_logits(config, params, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        full = np.asarray(multihost_utils.process_allgather(logits, tiled=True))
        out.append(full[: batch_size - short])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)
