"""Packed rows: several examples in one row, told apart by segment ids.

A packed row holds examples back to back from position 0; `segment_ids` [B, T] numbers them 1, 2, ...
in order and marks padding 0 (an unpacked row is one segment: its attention mask). Attention never
crosses a segment (`same_segment`), positions restart at each segment's first token
(`positions_in_segment`), and per-example heads (NSP/SOP, sequence classification) read each
segment's first token, its [CLS] (`segment_starts`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _first_of_segment(segment_ids: jax.Array) -> jax.Array:
    """bool [B, T]: the first token of every segment (padding included)."""
    previous = jnp.pad(segment_ids[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    return segment_ids != previous


def positions_in_segment(segment_ids: jax.Array) -> jax.Array:
    """int32 [B, T]: each token's offset from its segment's first token (0, 1, ... in every segment)."""
    t = segment_ids.shape[-1]
    index = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), segment_ids.shape)
    start = jax.lax.cummax(jnp.where(_first_of_segment(segment_ids), index, 0), axis=segment_ids.ndim - 1)
    return index - start


def segment_starts(segment_ids: jax.Array, max_segments: int) -> tuple[jax.Array, jax.Array]:
    """(starts int32 [B, K], present bool [B, K]): where segment k + 1 begins, and whether the row has it.

    Segments past `max_segments` are left out (the data never makes them); absent slots point at 0.
    """
    b, t = segment_ids.shape
    ids = segment_ids.astype(jnp.int32)
    first = _first_of_segment(ids) & (ids > 0)
    slot = jnp.where(first, ids - 1, max_segments)  # non-starts go to a dropped column
    rows = jnp.arange(b)[:, None]
    index = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    starts = jnp.zeros((b, max_segments), jnp.int32).at[rows, slot].set(index, mode="drop")
    present = jnp.zeros((b, max_segments), bool).at[rows, slot].set(True, mode="drop")
    return starts, present


def same_segment(segment_ids: jax.Array) -> jax.Array:
    """bool [B, 1, T, T]: query i may attend to key j (both in the same segment; padding sees padding)."""
    return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]


def gather_positions(x: jax.Array, positions: jax.Array) -> jax.Array:
    """x [B, T, ...] at `positions` [B, K] -> [B, K, ...]."""
    index = positions.astype(jnp.int32).reshape(positions.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)
