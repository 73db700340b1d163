"""XLNet's permutation language modelling (Yang et al. 2019), built on device from the step's rng.

Per sequence, as in the reference code (xlnet's data_utils.py `_sample_mask` and `_local_perm`):

1. Targets (partial prediction): about 1/K of the tokens (K = `partial_k`, 6 by default), chosen as
   spans: an n-gram length n ∝ 1/n (n ≤ `max_gram`), a context of n·alpha/beta tokens around it, the
   span starting at a word start after a random left context; spans are drawn left to right until
   the goal, then single tokens top it up. Special tokens and padding are never targets.
2. A factorization order: a random permutation of the positions, the same one within every chunk of
   `perm_size` tokens (the whole sequence by default). Non-target tokens come first (every position
   may see them); targets and the special tokens follow in permutation order.
3. `perm_mask[i, j]` (True = hidden): j is a target or special token not before i in that order (a
   target does not see itself; a special token does). The content stream adds "i sees itself"; the
   query stream predicts each target from the tokens before it and its position only.

The loss is the cross-entropy of the target slots' query-stream logits through the tied LM head.
`pair_task` only picks the pretraining data layout (the pipeline reads it): "none" packs full
sentences, "nsp" builds two-segment examples with a random second segment half the time, as XLNet's
own data does (the label trains nothing: XLNet drops next-sentence prediction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.data.masking import select_tokens
from jaxbert.model import build_model, logical_axes
from jaxbert.model.params import init_boxed
from jaxbert.objectives.base import Metrics, Objective, PyTree, encoder_fields, register_objective
from jaxbert.objectives.masking_setup import packed_examples, word_start_tables, word_starts_on_device
from jaxbert.objectives.mlm import attention_mask_of, encoder_flops_per_token, masked_lm_metrics
from jaxbert.tokenize.base import SpecialTokens

PAIR_TASKS = ("none", "nsp")
# The released XLNet vocabulary's layout: what a model without a tokenizer (tests, benchmarks) uses.
XLNET_SPECIAL = SpecialTokens(pad=5, unk=0, cls=3, sep=4, mask=6)


class PermutationTargets(NamedTuple):
    """One draw: `perm_mask` [B, T, T] bool (True = i may not attend to j), `target_mapping` [B, P, T]
    float32 one-hot rows (zero rows for unused slots), `positions` / `labels` / `weights` [B, P]."""

    perm_mask: jax.Array
    target_mapping: jax.Array
    positions: jax.Array
    labels: jax.Array
    weights: jax.Array
    is_target: jax.Array  # [B, T] bool
    rank: jax.Array  # [B, T] int32: order in the factorization (-1: visible to all)


def target_goal(maskable: jax.Array, partial_k: int, slots: int) -> jax.Array:
    """int32 [B]: how many targets each row gets: min(slots, max(1, n // K)) of its n maskable tokens (0 if none)."""
    n = maskable.sum(axis=-1).astype(jnp.int32)
    return jnp.where(n > 0, jnp.minimum(slots, jnp.maximum(1, n // partial_k)), 0)


def sample_spans(rng: jax.Array, maskable: jax.Array, word_starts: jax.Array, goal: jax.Array,
                 max_gram: int = 5, mask_alpha: int = 6, mask_beta: int = 1) -> jax.Array:
    """bool [B, T]: span targets as the reference's `_sample_mask`, topped up to exactly `goal[b]` tokens.

    One span per step, left to right: n ~ P(n) ∝ 1/n over 1..max_gram (cut to the tokens still
    wanted), context n·alpha//beta, left context l ~ U[0, context); the span is the n tokens from the
    first maskable word start at or after cur + l (the reference's end search re-tests its start
    piece, so its spans are n pieces, not n words: we follow it); then cur = end + context - l.
    Drawing stops at the goal or when a span runs off the row; random single tokens fill the rest.
    """
    b, t = maskable.shape
    pos = jnp.arange(t)
    candidates = jnp.where(maskable & word_starts, pos[None, :], t)
    next_start = jax.lax.cummin(candidates, axis=1, reverse=True)  # [B, T]: first start at or after p
    log_p = jnp.log(1.0 / jnp.arange(1, max_gram + 1, dtype=jnp.float32))
    steps = t // (1 + mask_alpha // mask_beta) + 1  # each span moves cur by at least 1 + alpha // beta

    def row(key: jax.Array, maskable_row: jax.Array, next_row: jax.Array, goal_row: jax.Array) -> jax.Array:
        def body(i, state):
            cur, num, mask, done = state
            k_n, k_l = jax.random.split(jax.random.fold_in(key, i))
            n = jnp.minimum(jax.random.categorical(k_n, log_p) + 1, goal_row - num)
            context = jnp.maximum(n * mask_alpha // mask_beta, 1)
            left = jax.random.randint(k_l, (), 0, context)
            at = cur + left
            beg = jnp.where(at < t, next_row[jnp.minimum(at, t - 1)], t)
            end = beg + n
            ok = ~done & (n > 0) & (beg < t) & (end <= t)
            span = (pos >= beg) & (pos < end) & maskable_row & ~mask
            mask = jnp.where(ok, mask | span, mask)
            num = jnp.where(ok, num + span.sum(), num)
            return jnp.where(ok, end + context - left, cur), num, mask, done | ~ok

        init = (jnp.int32(0), jnp.int32(0), jnp.zeros(t, bool), goal_row <= 0)
        return jax.lax.fori_loop(0, steps, body, init)[2]

    k_spans, k_fill = jax.random.split(rng)
    spans = jax.vmap(row)(jax.random.split(k_spans, b), maskable, next_start, goal)
    fill = goal - spans.sum(axis=-1).astype(jnp.int32)
    return spans | select_tokens(k_fill, maskable & ~spans, fill, t)


def permutation_ranks(rng: jax.Array, batch: int, length: int, perm_size: int = 0) -> jax.Array:
    """int32 [B, T]: each position's place in a factorization order; with `perm_size` the same shuffle of
    offsets repeats in every chunk of that many positions, chunks in order (the reference's `_local_perm`)."""
    size = perm_size or length
    if length % size:
        raise ConfigError(f"config.objective.perm_size: {size} does not divide the sequence length {length}")
    keys = jax.random.split(rng, batch)
    offsets = jax.vmap(lambda k: jax.random.permutation(k, size))(keys).astype(jnp.int32)  # [B, size]
    pos = jnp.arange(length)
    return (pos // size * size)[None, :] + offsets[:, pos % size]


def permutation_mask(is_target: jax.Array, is_special: jax.Array, rank: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(perm_mask [B, T, T] bool, order rank [B, T]): the reference's mask from targets, specials and ranks."""
    ordered = is_target | is_special  # the rest (context tokens, padding) go first and are seen by all
    rank = jnp.where(ordered, rank, -1)
    own = jnp.where(is_target, rank, rank + 1)  # a target may not see itself; a special token may
    return (own[:, :, None] <= rank[:, None, :]) & ordered[:, None, :], rank


def target_slots(is_target: jax.Array, slots: int) -> tuple[jax.Array, jax.Array]:
    """(positions [B, P] ascending, weights [B, P] float32) of each row's targets; unused slots hold 0."""
    t = is_target.shape[-1]
    keys = jnp.where(is_target, t - jnp.arange(t)[None, :], 0)  # earlier targets rank higher
    score, top = jax.lax.top_k(keys, slots)
    return jnp.where(score > 0, top, 0).astype(jnp.int32), (score > 0).astype(jnp.float32)


class PermutationLM(Objective):
    """XLNet's PLM: one model (the `lm` head tied to the word table), loss = CE over the target slots."""

    name = "plm"

    def __init__(self, model_config: ModelConfig, special_ids: tuple[int, ...], pad_id: int,
                 word_tables: tuple[np.ndarray, np.ndarray] | None = None, partial_k: int = 6,
                 max_predictions: int = 0, max_gram: int = 5, mask_alpha: int = 6, mask_beta: int = 1,
                 perm_size: int = 0, pair_task: str = "none") -> None:
        if model_config.family != "xlnet":
            raise ConfigError(f"config.model: the plm objective trains XLNet, got family {model_config.family!r}; "
                              "use an xlnet-* preset")
        for field, value, low in (("partial_k", partial_k, 1), ("max_gram", max_gram, 1),
                                  ("mask_alpha", mask_alpha, 1), ("mask_beta", mask_beta, 1),
                                  ("max_predictions", max_predictions, 0), ("perm_size", perm_size, 0)):
            if int(value) < low:
                raise ConfigError(f"config.objective.{field}: must be >= {low}, got {value}")
        if pair_task not in PAIR_TASKS:
            raise ConfigError(f"config.objective.pair_task: {pair_task!r} is no XLNet data layout; use "
                              f"{' or '.join(PAIR_TASKS)} (XLNet trains no sentence-pair loss)")
        self.model_config = model_config.replace(heads=("lm",))
        self.special_ids = tuple(sorted({int(i) for i in special_ids} - {int(pad_id)}))
        self.pad_id = int(pad_id)
        self.word_tables = word_tables
        self.partial_k, self.max_predictions, self.perm_size = int(partial_k), int(max_predictions), int(perm_size)
        self.max_gram, self.mask_alpha, self.mask_beta = int(max_gram), int(mask_alpha), int(mask_beta)
        self.pair_task = pair_task

    def slots(self, seq_len: int) -> int:
        """P, the target slots per sequence: max_predictions, else seq_len // K (85 for 512, as XLNet)."""
        return min(seq_len, self.max_predictions or max(1, seq_len // self.partial_k))

    # ---- params ---------------------------------------------------------------------
    def init(self, rng: jax.Array) -> PyTree:
        import flax.linen as nn

        return nn.unbox(init_boxed(self.model_config, rng))

    def param_axes(self) -> PyTree:
        return logical_axes(self.model_config)

    # ---- the draw -------------------------------------------------------------------
    def draw(self, rng: jax.Array, ids: jax.Array, attention: jax.Array) -> PermutationTargets:
        """Targets, factorization order and masks for a batch of token ids [B, T]."""
        b, t = ids.shape
        k_spans, k_perm = jax.random.split(rng)
        is_special = jnp.isin(ids, jnp.asarray(self.special_ids, ids.dtype)) & (attention > 0)
        maskable = (attention > 0) & ~is_special
        if self.word_tables is not None:
            starts = word_starts_on_device(ids, *(jnp.asarray(x) for x in self.word_tables))
        else:
            starts = jnp.ones((b, t), bool)
        slots = self.slots(t)
        goal = target_goal(maskable, self.partial_k, slots)
        is_target = sample_spans(k_spans, maskable, starts, goal, self.max_gram, self.mask_alpha, self.mask_beta)
        perm_mask, rank = permutation_mask(is_target, is_special,
                                           permutation_ranks(k_perm, b, t, self.perm_size))
        positions, weights = target_slots(is_target, slots)
        mapping = jax.nn.one_hot(positions, t, dtype=jnp.float32) * weights[..., None]
        labels = jnp.take_along_axis(ids, positions, axis=1)
        return PermutationTargets(perm_mask, mapping, positions, labels, weights, is_target, rank)

    # ---- loss -----------------------------------------------------------------------
    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        del frozen
        cfg = self.model_config
        k_draw, k_dropout = jax.random.split(rng)
        ids = batch["input_ids"].astype(jnp.int32)
        attention = attention_mask_of(batch, self.pad_id)
        types = batch.get("token_type_ids")
        if cfg.bi_data:  # the second half of the batch reads its text backward, with backward positions
            half = ids.shape[0] // 2
            flip = lambda x: None if x is None else jnp.concatenate([x[:half], jnp.flip(x[half:], axis=1)])
            ids, attention, types = flip(ids), flip(attention), flip(types)
        draw = self.draw(k_draw, ids, attention)
        out = build_model(cfg).apply(
            {"params": params}, ids, attention, types, deterministic=deterministic, perm_mask=draw.perm_mask,
            target_mapping=draw.target_mapping, rngs=None if deterministic else {"dropout": k_dropout})
        loss, accuracy = masked_lm_metrics(out.logits["lm"], draw.labels, draw.weights)
        return loss, {"loss": loss, "plm_loss": loss, "plm_accuracy": accuracy,
                      "plm_targets": draw.weights.sum(axis=-1).mean()}

    # ---- shapes & cost --------------------------------------------------------------
    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        return encoder_fields(self.model_config, batch_size, seq_len)

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """6 × forward matmul FLOPs: both streams (the query stream attends at every position, as
        transformers computes it), the relative-position projections, the LM head on the P slots."""
        cfg = self.model_config
        h, p, r = cfg.hidden_size, self.slots(seq_len), 2 * seq_len
        content = seq_len * encoder_flops_per_token(cfg, seq_len)
        positional = cfg.num_layers * (2 * r * h * h / batch_size + 2 * 2 * seq_len * r * h)
        query = cfg.num_layers * (p * 2 * (2 * h * h + 2 * h * cfg.intermediate_size) + 2 * 2 * seq_len * seq_len * h)
        head = p * 2 * h * cfg.vocab_size
        return 3.0 * batch_size * (content + positional + query + head)


@register_objective("plm")
def make_permutation_lm(config: Any, tokenizer: Any = None) -> PermutationLM:
    """PermutationLM from an experiment config: `model` (an xlnet preset or fields), `objective.{partial_k,
    max_predictions, max_gram, mask_alpha, mask_beta, perm_size, word_spans, pair_task}`."""
    opts = config.objective
    get = lambda key, default: opts.get(key, default) if hasattr(opts, "get") else default
    if packed_examples(config):
        # XLNet's reference data are unpadded chunks of running text; its relative attention and
        # permutation masks take no segment ids here.
        raise ConfigError("config.data.pack_examples: the plm objective (XLNet) does not pack examples; set "
                          "data.pack_examples=False (pair_task='none' already fills rows with running text)")
    model = resolve_model_config(config.model.to_dict() if hasattr(config.model, "to_dict") else config.model)
    special = tokenizer.special if tokenizer is not None else XLNET_SPECIAL
    vocab = tokenizer.vocab_size if tokenizer is not None else model.vocab_size
    if vocab != model.vocab_size:
        raise ConfigError(f"config.model.vocab_size: the model has {model.vocab_size} ids but the tokenizer has "
                          f"{vocab}; set vocab_size to the tokenizer's")
    tables = word_start_tables(tokenizer) if tokenizer is not None and bool(get("word_spans", True)) else None
    pad = special.pad if tokenizer is not None else model.pad_token_id
    return PermutationLM(model, (special.cls, special.sep), pad, tables,
                         partial_k=int(get("partial_k", 6)), max_predictions=int(get("max_predictions", 0) or 0),
                         max_gram=int(get("max_gram", 5)), mask_alpha=int(get("mask_alpha", 6)),
                         mask_beta=int(get("mask_beta", 1)), perm_size=int(get("perm_size", 0) or 0),
                         pair_task=str(get("pair_task", "none")))
