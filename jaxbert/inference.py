"""Running a loaded model in a notebook: forward passes, embeddings, per-token features and fill-mask,
compiled for a handful of shapes only.

XLA compiles a program per input shape, so a notebook calling `p.embed` on 1, 2, 3, ... texts would
compile (seconds each on CPU) at every new batch size. Here every batch is padded up to a bucket before
it reaches the model. Texts (`embed`, `features`, `fill_mask`): rows to a power of four up to the call's
`batch_size` (1, 4, 16, then batch_size), tokens to a power of two of at least 32 — a loop over 1..64 short
texts compiles about six programs. Token arrays given to `p(...)`: rows and tokens to powers of two (tokens
at least 16), at most twice the caller's work. Padded rows repeat a real row, padded tokens are masked out,
and both are dropped from the results, so the outputs are those of the unpadded batch. The jitted
functions live at module level, so their compiled programs are shared by every call and every model of
the same config.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.model import ModelOutput, build_model

MIN_LENGTH_BUCKET = 16  # p(...): tokens padded to a power of two >= 16
TEXT_MIN_LENGTH = 32  # encoded texts: a power of two >= 32 (short texts are cheap; fewer shapes matter more)
TEXT_ROW_BASE = 4  # encoded texts: rows padded to a power of four (1, 4, 16, ...) up to batch_size
INPUT_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
# The BERT paper's feature-based choices (Table 7) by name; integers index hidden_states
# (0 = embeddings output, L = last layer).
FEATURE_CHOICES = ("embeddings", "last", "second_to_last", "sum_last_four", "concat_last_four", "sum_all")


# ---- buckets ----------------------------------------------------------------------------------
def bucket(n: int, cap: int | None = None, minimum: int = 1, base: int = 2) -> int:
    """The smallest power of `base` >= n and >= `minimum`, but never more than `cap` (when n <= cap)."""
    size = max(int(minimum), 1)
    while size < n:
        size *= base
    return size if cap is None else max(min(size, int(cap)), int(n))


def max_input_length(config: ModelConfig) -> int:
    """The longest input the model's position table allows (RoBERTa's offset positions take some)."""
    return config.max_position_embeddings - config.position_offset - (1 if config.position_offset else 0)


def pad_inputs(arrays: dict[str, np.ndarray], rows: int, length: int, pad_id: int) -> dict[str, np.ndarray]:
    """[B, T] int arrays padded to [rows, length]: extra rows repeat row 0 (a valid input whose results are
    dropped), extra tokens are padding (id `pad_id`, attention 0, segment 0)."""
    out = {}
    for name, x in arrays.items():
        x = np.asarray(x, np.int32)
        b, t = x.shape
        fill = pad_id if name == "input_ids" else 0
        x = np.pad(x, ((0, 0), (0, length - t)), constant_values=fill)
        if rows > b:
            x = np.concatenate([x, np.repeat(x[:1], rows - b, axis=0)])
        out[name] = x
    return out


# ---- pooling and layer choices (pure jnp) ------------------------------------------------------
def pool(hidden: jax.Array, mask: jax.Array, pooling: str, normalize: bool = False) -> jax.Array:
    """Pool [B, T, H] hidden states over real tokens (mask 1) into [B, H]."""
    m = mask.astype(jnp.float32)[..., None]
    h = hidden.astype(jnp.float32)
    if pooling == "mean":
        out = (h * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)
    elif pooling == "max":
        out = jnp.where(m > 0, h, -jnp.inf).max(1)
    else:
        out = h[:, 0]
    if normalize:
        out = out / jnp.maximum(jnp.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out


def combine_layers(hidden_states: Sequence[jax.Array], layers: str | Sequence[int]) -> jax.Array:
    """Combine (embeddings, layer 1..L) hidden states per the BERT paper's feature-based choices."""
    hs = list(hidden_states)
    if isinstance(layers, str):
        if layers not in FEATURE_CHOICES:
            raise JaxbertError(f"unknown feature choice {layers!r}; use one of {', '.join(FEATURE_CHOICES)} "
                               "or a list of layer indices")
        if layers == "embeddings":
            return hs[0]
        if layers == "last":
            return hs[-1]
        if layers == "second_to_last":
            return hs[-2]
        if layers == "sum_last_four":
            return sum(hs[-4:])
        if layers == "concat_last_four":
            return jnp.concatenate(hs[-4:], axis=-1)
        return sum(hs[1:])
    idx = list(layers)
    bad = [i for i in idx if not -len(hs) <= i < len(hs)]
    if bad or not idx:
        raise JaxbertError(f"layer indices {idx} out of range: the model has hidden states 0..{len(hs) - 1}")
    return jnp.concatenate([hs[i] for i in idx], axis=-1)


# ---- jitted programs (one compile per config, bucket shape and option) ----------------------
@functools.partial(jax.jit, static_argnames=("config", "output_hidden_states"))
def _forward(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
             token_type_ids: jax.Array | None, output_hidden_states: bool) -> ModelOutput:
    return build_model(config).apply({"params": params}, input_ids, attention_mask, token_type_ids,
                                      deterministic=True, output_hidden_states=output_hidden_states)


@functools.partial(jax.jit, static_argnames=("config", "pooling", "normalize"))
def _embed(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
           token_type_ids: jax.Array | None, pooling: str, normalize: bool) -> jax.Array:
    out = build_model(config).apply({"params": params}, input_ids, attention_mask, token_type_ids,
                                     deterministic=True, heads=())
    return pool(out.last_hidden_state, attention_mask, pooling, normalize)


@functools.partial(jax.jit, static_argnames=("config", "layers"))
def _features(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
              token_type_ids: jax.Array | None, layers: str | tuple[int, ...]) -> jax.Array:
    out = build_model(config).apply({"params": params}, input_ids, attention_mask, token_type_ids,
                                     deterministic=True, output_hidden_states=True, heads=())
    return combine_layers(out.hidden_states, layers).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("config", "top_k"))
def _mask_top_k(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
                token_type_ids: jax.Array | None, positions: jax.Array, top_k: int) -> tuple[jax.Array, jax.Array]:
    """(probabilities, ids) [B, P, top_k] of the MLM softmax over the whole vocabulary at `positions` [B, P]."""
    out = build_model(config).apply({"params": params}, input_ids, attention_mask, token_type_ids,
                                     deterministic=True, masked_positions=positions, heads=("mlm",))
    probs = jax.nn.softmax(out.logits["mlm"].astype(jnp.float32), axis=-1)
    return jax.lax.top_k(probs, top_k)


# ---- the face's operations --------------------------------------------------------------------
def _check_length(config: ModelConfig, length: int) -> None:
    if length > max_input_length(config):
        raise JaxbertError(f"input length {length} exceeds the model's max_position_embeddings "
                           f"{config.max_position_embeddings}; truncate the inputs")


def forward(config: ModelConfig, params: Any, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
            output_hidden_states: bool = False, pad_token_id: int = 0) -> ModelOutput:
    """The model on [B, T] inputs, run at the bucket shape (powers of two) and cut back to [B, T]."""
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise JaxbertError(f"input_ids must be a [batch, length] array, got shape {tuple(ids.shape)}")
    b, t = ids.shape
    _check_length(config, t)
    arrays = {"input_ids": ids,
              "attention_mask": np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask),
              # No segments given: None, not zeros (XLNet then adds no segment term, as transformers does).
              **({} if token_type_ids is None else {"token_type_ids": np.asarray(token_type_ids)})}
    rows, length = bucket(b), bucket(t, max_input_length(config), MIN_LENGTH_BUCKET)
    padded = pad_inputs(arrays, rows, length, pad_token_id)
    out = _forward(config, params, padded["input_ids"], padded["attention_mask"], padded.get("token_type_ids"),
                   output_hidden_states)
    if (rows, length) == (b, t):
        return out
    # Cutting on device costs a small slice per new shape, not a model compile. replace() keeps the output's
    # class (XLNet's adds fields, None here: p(...) passes no memory or target mapping).
    per_token = {"mlm", "lm", "rtd", "span", "token"}
    return dataclasses.replace(
        out, last_hidden_state=out.last_hidden_state[:b, :t],
        pooler_output=None if out.pooler_output is None else out.pooler_output[:b],
        hidden_states=None if out.hidden_states is None else tuple(h[:b, :t] for h in out.hidden_states),
        logits={k: v[:b, :t] if k in per_token else v[:b] for k, v in out.logits.items()})


class Chunk(NamedTuple):
    """One bucket-shaped batch of encoded texts: `rows` real rows of `arrays`, real mask `attention_mask`."""

    arrays: dict[str, np.ndarray]
    rows: int
    attention_mask: np.ndarray


def encoded_chunks(tokenizer: Any, config: ModelConfig, texts: Sequence[str], batch_size: int,
                   max_length: int) -> list[Chunk]:
    """Texts encoded `batch_size` at a time, each batch padded to its bucket shape."""
    if batch_size < 1:
        raise JaxbertError(f"batch_size must be >= 1, got {batch_size}")
    chunks = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), max_length=max_length, padding="longest",
                        truncation=True)
        enc = {k: v for k, v in enc.items() if k in INPUT_FIELDS}
        b, t = enc["input_ids"].shape
        length = bucket(t, max_length, TEXT_MIN_LENGTH)
        rows = bucket(b, batch_size, base=TEXT_ROW_BASE)
        chunks.append(Chunk(pad_inputs(enc, rows, length, tokenizer.special.pad), b, enc["attention_mask"]))
    return chunks


def embed(config: ModelConfig, params: Any, tokenizer: Any, texts: Sequence[str], pooling: str, normalize: bool,
          batch_size: int, max_length: int) -> np.ndarray:
    """Sentence embeddings [N, H] (float32)."""
    rows = [np.asarray(_embed(config, params, *(c.arrays.get(k) for k in INPUT_FIELDS), pooling, normalize))[:c.rows]
            for c in encoded_chunks(tokenizer, config, texts, batch_size, max_length)]
    if not rows:
        return np.zeros((0, config.hidden_size), np.float32)
    return np.concatenate(rows).astype(np.float32)


def features(config: ModelConfig, params: Any, tokenizer: Any, texts: Sequence[str], layers: Any, batch_size: int,
             max_length: int) -> list[np.ndarray]:
    """Per-token features of each text ([n_tokens, F], padding removed)."""
    layers = layers if isinstance(layers, str) else tuple(int(i) for i in layers)
    out: list[np.ndarray] = []
    for c in encoded_chunks(tokenizer, config, texts, batch_size, max_length):
        feats = np.asarray(_features(config, params, *(c.arrays.get(k) for k in INPUT_FIELDS), layers))
        for row, mask in zip(feats[:c.rows], c.attention_mask, strict=True):
            out.append(row[:mask.shape[0]][mask.astype(bool)])
    return out


def fill_mask_ids(config: ModelConfig, params: Any, tokenizer: Any, texts: Sequence[str], top_k: int = 5,
                  batch_size: int = 32, max_length: int = 512) -> list[list[list[tuple[int, float]]]]:
    """For each text, for each mask token in it (left to right), the `top_k` (token id, probability) pairs."""
    if "mlm" not in config.heads:
        raise JaxbertError(f"this {config.family} checkpoint has no MLM head (heads: {list(config.heads) or 'none'}); "
                           "fill-mask needs a masked-LM model: a pretraining workdir or bundle, or a Hugging Face "
                           "*ForMaskedLM / *ForPreTraining directory")
    if not 1 <= top_k <= config.vocab_size:
        raise JaxbertError(f"top_k must be between 1 and the vocabulary size {config.vocab_size}, got {top_k}")
    mask_id = tokenizer.special.mask
    mask_token = tokenizer.convert_ids_to_tokens([mask_id])[0]
    results: list[list[list[tuple[int, float]]]] = []
    for start, c in zip(range(0, len(texts), batch_size),
                        encoded_chunks(tokenizer, config, texts, batch_size, max_length), strict=True):
        ids = c.arrays["input_ids"]
        where = [np.flatnonzero(ids[r] == mask_id) for r in range(c.rows)]
        for r, found in enumerate(where):
            if not found.size:
                raise JaxbertError(f"text {start + r} has no mask token {mask_token!r}: {texts[start + r][:60]!r}; "
                                   f"write {mask_token} where the model should fill in a token")
        slots = bucket(max(len(w) for w in where))
        positions = np.zeros((ids.shape[0], slots), np.int32)
        for r, found in enumerate(where):
            positions[r, :len(found)] = found
        probs, top = _mask_top_k(config, params, *(c.arrays.get(k) for k in INPUT_FIELDS), positions, top_k)
        probs, top = np.asarray(probs), np.asarray(top)
        for r, found in enumerate(where):
            results.append([[(int(top[r, j, i]), float(probs[r, j, i])) for i in range(top_k)]
                            for j in range(len(found))])
    return results


def fill_mask(config: ModelConfig, params: Any, tokenizer: Any, texts: Sequence[str], top_k: int = 5,
              batch_size: int = 32, max_length: int = 512) -> list[list[list[tuple[str, float]]]]:
    """`fill_mask_ids` with each id written as its token text (the tokenizer's decode of that one id)."""
    by_id = fill_mask_ids(config, params, tokenizer, texts, top_k, batch_size, max_length)
    return [[[(tokenizer.decode([i], skip_special_tokens=False), p) for i, p in mask] for mask in text]
            for text in by_id]
