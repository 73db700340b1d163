"""Dynamic masked-LM masking on device: BERT's 80/10/10 rule, optional whole-word masking.

Everything here is a pure function of (token ids, rng, a static `MaskingConfig`), so it runs
inside a jitted train step and gives a fresh mask every step. The selection is EXACT, as in
BERT's `create_pretraining_data.py`: each sequence gets exactly
`min(max_predictions, max(1, round(n * mask_prob)))` selected tokens, where `n` counts its
maskable tokens (BERT counts [CLS]/[SEP] in `n` too; we count only the tokens that may be
chosen). `round` is half-to-even, like Python 3's. The 80/10/10 replacement is a per-token
draw, so that split holds in expectation. ELECTRA's generator input uses the same functions
with its own probabilities (e.g. `random_replace_prob=0`).

N-gram masking (ALBERT, Lan et al. 2020 section 4.1; `max_ngram` > 1): the unit of selection is a
span of n <= max_ngram consecutive words (tokens when `whole_word` is off) with p(n) ∝ 1/n, and the
budget stays BERT's count in tokens. ALBERT's create_pretraining_data.py draws n per candidate start
in a shuffled order, falls back to shorter n when the span overshoots the budget and skips spans that
overlap earlier ones. On device (`ngram_spans`) each row's words are instead cut into consecutive
spans whose lengths are drawn i.i.d. from p(n) (a renewal tiling: spans never overlap, any word may
start one), and whole spans are then chosen in random order as whole words are: a span that would
overshoot what is left of the budget is skipped and later ones fill it. So a span never splits a word
and never overlaps another; the lengths of the spans drawn follow p(n) exactly, and those masked are
biased towards short spans only where the budget runs out (the last span or two of a row).

Packed rows (`segment_ids` [B, T]: examples 1, 2, ..., padding 0; see jaxbert.data.packing): the budget is
BERT's count per example, `min(max_predictions, max(1, round(n_s * mask_prob)))` for the n_s maskable
tokens of segment s, and every selection rule above holds within each segment; the gather form then has
`packed_slots` slots per row, enough for every segment's budget.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbert.errors import JaxbertError

MAX_NGRAM = 10
# The batch field of word-start flags when a dataset stores them (a segmenter found the words).
WORD_STARTS = "word_starts"


class MaskingConfigError(JaxbertError, ValueError):
    """A masking setting is out of range; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """What to mask and how; frozen and hashable so it can be a static jit argument.

    `special_ids` are never selected and never drawn as random replacements.
    Of the selected tokens, `mask_replace_prob` become `mask_token_id`, `random_replace_prob`
    become a uniformly drawn non-special token, and the rest keep their id.
    """

    mask_token_id: int
    vocab_size: int
    special_ids: tuple[int, ...]
    mask_prob: float = 0.15
    max_predictions: int = 20
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    whole_word: bool = False
    max_ngram: int = 1  # ALBERT's n-gram masking: spans of n <= max_ngram words, p(n) ∝ 1/n

    def __post_init__(self) -> None:
        object.__setattr__(self, "special_ids", tuple(sorted({int(s) for s in self.special_ids})))
        self.validate()

    def validate(self) -> None:
        def bad(field: str, msg: str) -> None:
            raise MaskingConfigError(f"MaskingConfig.{field}: {msg}")

        if self.vocab_size <= 0:
            bad("vocab_size", f"must be positive, got {self.vocab_size}")
        if not 0 <= self.mask_token_id < self.vocab_size:
            bad("mask_token_id", f"{self.mask_token_id} is outside the vocabulary (size {self.vocab_size})")
        if not 0.0 < self.mask_prob <= 1.0:
            bad("mask_prob", f"must be in (0, 1], got {self.mask_prob}")
        if self.max_predictions < 1:
            bad("max_predictions", f"must be >= 1, got {self.max_predictions}")
        if not 1 <= self.max_ngram <= MAX_NGRAM:
            bad("max_ngram", f"must be in [1, {MAX_NGRAM}] (1 = no n-gram spans; ALBERT uses 3), got {self.max_ngram}")
        for field in ("mask_replace_prob", "random_replace_prob"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                bad(field, f"must be in [0, 1], got {getattr(self, field)}")
        if self.mask_replace_prob + self.random_replace_prob > 1.0 + 1e-9:
            bad("random_replace_prob", "mask_replace_prob + random_replace_prob must be <= 1 "
                f"(got {self.mask_replace_prob} + {self.random_replace_prob})")
        if self.random_replace_prob > 0 and not self.random_candidates:
            bad("special_ids", "every vocabulary id is special, so no random replacement can be drawn; "
                "set random_replace_prob=0 or shrink special_ids")

    @property
    def random_candidates(self) -> int:
        """How many ids a random replacement is drawn from (the non-special vocabulary)."""
        return self.vocab_size - sum(1 for s in self.special_ids if 0 <= s < self.vocab_size)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **overrides: Any) -> MaskingConfig:
        """A config for a jaxbert Tokenizer: its [MASK] id, vocab size and special ids."""
        special = tokenizer.special
        return cls(mask_token_id=special.mask, vocab_size=tokenizer.vocab_size,
                   special_ids=tuple(special.all()), **overrides)


class MaskedTokens(NamedTuple):
    """Both forms of one masking draw.

    Dense: `inputs` [B, T] (model input), `labels` [B, T] (original id where selected, 0
    elsewhere), `weights` [B, T] float32 (1.0 where selected).
    Gather (BERT's `masked_lm_*` features, P = max_predictions): `masked_positions` [B, P]
    ascending, `masked_ids` [B, P] original ids, `masked_weights` [B, P]; unused slots hold 0.
    """

    inputs: jax.Array
    labels: jax.Array
    weights: jax.Array
    masked_positions: jax.Array
    masked_ids: jax.Array
    masked_weights: jax.Array


def maskable_positions(ids: jax.Array, special_ids: tuple[int, ...],
                       attention_mask: jax.Array | None = None) -> jax.Array:
    """bool [B, T]: tokens that may be selected (not a special id, not padding)."""
    maskable = ~jnp.isin(ids, jnp.asarray(special_ids, dtype=ids.dtype)) if special_ids else \
        jnp.ones(ids.shape, dtype=bool)
    if attention_mask is not None:
        maskable &= attention_mask.astype(bool)
    return maskable


def num_to_predict(maskable: jax.Array, mask_prob: float, max_predictions: int) -> jax.Array:
    """int32 [B]: BERT's count `min(max_predictions, max(1, round(n * mask_prob)))`, 0 where n == 0."""
    # A host-side table (T is static) gives Python's float64 round-half-even exactly; float32
    # arithmetic on device would round e.g. 30 * 0.15 = 4.5 up instead of to 4.
    t = maskable.shape[-1]
    table = [0] + [min(max_predictions, max(1, round(n * mask_prob))) for n in range(1, t + 1)]
    return jnp.asarray(table, jnp.int32)[maskable.sum(axis=-1)]


def packed_slots(seq_len: int, mask_prob: float, max_predictions: int, max_segments: int) -> int:
    """Gather slots a packed row needs: the per-segment budgets sum to at most T·p + K (each is at most
    n_s·p + 1), and to at most K·max_predictions."""
    return max(1, min(seq_len, math.ceil(seq_len * mask_prob) + max_segments, max_segments * max_predictions))


def num_per_segment(maskable: jax.Array, segment_ids: jax.Array, mask_prob: float, max_predictions: int
                    ) -> jax.Array:
    """int32 [B, T + 1]: BERT's count (`num_to_predict`) for each segment id's maskable tokens (0: none)."""
    b, t = maskable.shape
    rows = jnp.arange(b)[:, None]
    counts = jnp.zeros((b, t + 1), jnp.int32).at[rows, segment_ids].add(maskable.astype(jnp.int32))
    table = [0] + [min(max_predictions, max(1, round(n * mask_prob))) for n in range(1, t + 1)]
    return jnp.asarray(table, jnp.int32)[counts]


def select_tokens_per_segment(rng: jax.Array, maskable: jax.Array, segment_ids: jax.Array,
                              num: jax.Array) -> jax.Array:
    """bool [B, T]: exactly `num[b, s]` maskable tokens of each segment s, uniformly without replacement.

    One sort by (segment, random key) lists each segment's maskable tokens in random order; the first
    `num[b, s]` of each run are taken.
    """
    b, t = maskable.shape
    rows = jnp.arange(b)[:, None]
    index = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    seg = jnp.where(maskable, segment_ids.astype(jnp.int32), t + 1)  # unmaskable tokens sort last
    sorted_seg, _, sorted_index = jax.lax.sort((seg, jax.random.uniform(rng, (b, t)), index), num_keys=2)
    first = sorted_seg != jnp.pad(sorted_seg[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    rank = index - jax.lax.cummax(jnp.where(first, index, 0), axis=1)
    budget = jnp.take_along_axis(num, jnp.minimum(sorted_seg, t), axis=1)
    take = (sorted_seg <= t) & (rank < budget)
    return jnp.zeros((b, t), bool).at[rows, sorted_index].set(take)


def select_tokens(rng: jax.Array, maskable: jax.Array, num: jax.Array, max_predictions: int,
                  weights: jax.Array | None = None) -> jax.Array:
    """bool [B, T]: exactly `num[b]` maskable tokens per row, at random without replacement.

    A random key per token and a top-k keep this jittable; `num` must not exceed
    `max_predictions` (as `num_to_predict` guarantees). Uniform by default; with `weights`
    (float [B, T], > 0) a row's tokens are drawn one after another with probability proportional
    to their weight among those left (Gumbel-top-k: log weight + Gumbel noise as the key).
    """
    b, t = maskable.shape
    u = jax.random.uniform(rng, (b, t))
    if weights is not None:
        gumbel = -jnp.log(-jnp.log(jnp.clip(u, 1e-20, 1.0 - 1e-7)))
        u = jnp.log(jnp.maximum(weights.astype(jnp.float32), 1e-30)) + gumbel
    keys = jnp.where(maskable, u, -jnp.inf if weights is not None else -1.0)
    k = min(max_predictions, t)
    _, top = jax.lax.top_k(keys, k)
    take = jnp.arange(k)[None, :] < num[:, None]
    rows = jnp.arange(b)[:, None]
    return jnp.zeros((b, t), dtype=bool).at[rows, top].max(take)


def select_whole_words(rng: jax.Array, maskable: jax.Array, word_starts: jax.Array,
                       num: jax.Array, segment_ids: jax.Array | None = None) -> jax.Array:
    """bool [B, T]: whole words, in random order, greedily added while they fit in `num[b]` tokens.

    A word is a maskable token flagged in `word_starts` plus the maskable non-start tokens that
    follow it (a non-start token with no maskable token before it starts its own word). As in
    BERT's whole-word masking, a word that would overshoot the budget is skipped and later
    (shorter) words may still fill it, so every piece of a chosen word is selected and no
    word is selected partially.

    Packed rows: with `segment_ids` [B, T], `num` is [B, T + 1] (`num_per_segment`), a word never
    crosses a segment, and each word counts against its own segment's budget.
    """
    b, t = maskable.shape
    rows = jnp.arange(b)[:, None]
    prev_maskable = jnp.pad(maskable[:, :-1], ((0, 0), (1, 0)))
    starts = maskable & (word_starts.astype(bool) | ~prev_maskable)
    if segment_ids is not None:
        starts = starts | (maskable & (segment_ids != jnp.pad(segment_ids[:, :-1], ((0, 0), (1, 0)))))
        return _whole_words_per_segment(rng, maskable, starts, num, segment_ids)
    word_id = jnp.cumsum(starts, axis=-1) - 1
    # Tokens outside any word go to an extra bucket `t`, dropped below.
    bucket = jnp.where(maskable, word_id, t)
    word_len = jnp.zeros((b, t + 1), jnp.int32).at[rows, bucket].add(1)[:, :t]
    n_words = starts.sum(axis=-1)
    keys = jnp.where(jnp.arange(t)[None, :] < n_words[:, None], jax.random.uniform(rng, (b, t)), 2.0)
    order = jnp.argsort(keys, axis=-1)
    lens_in_order = jnp.take_along_axis(word_len, order, axis=-1)

    def add_word(count: jax.Array, lens: jax.Array) -> tuple[jax.Array, jax.Array]:
        take = (lens > 0) & (count + lens <= num)
        return count + jnp.where(take, lens, 0), take

    _, taken = jax.lax.scan(add_word, jnp.zeros((b,), jnp.int32), lens_in_order.T)
    chosen_word = jnp.zeros((b, t), bool).at[rows, order].set(taken.T)
    return maskable & jnp.take_along_axis(chosen_word, jnp.clip(word_id, 0, t - 1), axis=-1)


def _whole_words_per_segment(rng: jax.Array, maskable: jax.Array, starts: jax.Array, num: jax.Array,
                             segment_ids: jax.Array) -> jax.Array:
    """`select_whole_words` with a budget per segment: the scan carries each segment's count."""
    b, t = maskable.shape
    rows = jnp.arange(b)[:, None]
    word_id = jnp.cumsum(starts, axis=-1) - 1
    bucket = jnp.where(maskable, word_id, t)
    word_len = jnp.zeros((b, t + 1), jnp.int32).at[rows, bucket].add(1)[:, :t]
    word_seg = jnp.zeros((b, t + 1), jnp.int32).at[rows, bucket].max(segment_ids.astype(jnp.int32))[:, :t]
    n_words = starts.sum(axis=-1)
    keys = jnp.where(jnp.arange(t)[None, :] < n_words[:, None], jax.random.uniform(rng, (b, t)), 2.0)
    order = jnp.argsort(keys, axis=-1)
    lens_in_order = jnp.take_along_axis(word_len, order, axis=-1)
    segs_in_order = jnp.take_along_axis(word_seg, order, axis=-1)
    batch = jnp.arange(b)

    def add_word(count: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lens, segs = xs
        take = (lens > 0) & (count[batch, segs] + lens <= num[batch, segs])
        return count.at[batch, segs].add(jnp.where(take, lens, 0)), take

    _, taken = jax.lax.scan(add_word, jnp.zeros((b, t + 1), jnp.int32), (lens_in_order.T, segs_in_order.T))
    chosen_word = jnp.zeros((b, t), bool).at[rows, order].set(taken.T)
    return maskable & jnp.take_along_axis(chosen_word, jnp.clip(word_id, 0, t - 1), axis=-1)


def ngram_probabilities(max_ngram: int) -> list[float]:
    """ALBERT's span-length distribution: p(n) = (1/n) / sum_{k<=max_ngram} 1/k for n = 1..max_ngram."""
    weights = [1.0 / n for n in range(1, max_ngram + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def ngram_spans(rng: jax.Array, maskable: jax.Array, word_starts: jax.Array, max_ngram: int
                ) -> tuple[jax.Array, jax.Array]:
    """(starts bool [B, T], lengths int32 [B, T]): each row's words cut into consecutive n-gram spans.

    Words are those of `select_whole_words` (a maskable start token and the maskable continuations after
    it). Span k covers words [S_k, S_k + L_k) with L_1, L_2, ... drawn i.i.d. from `ngram_probabilities`
    and S_k their running sum: T draws always cover a row of T tokens, and no span overlaps another.
    `starts` marks the first token of every span, `lengths` holds its drawn length in words there (0
    elsewhere); a row's last span may be cut short by the row's end (or a special token inside it).
    """
    b, t = maskable.shape
    rows = jnp.arange(b)[:, None]
    prev_maskable = jnp.pad(maskable[:, :-1], ((0, 0), (1, 0)))
    starts = maskable & (word_starts.astype(bool) | ~prev_maskable)
    word_id = jnp.clip(jnp.cumsum(starts, axis=-1) - 1, 0, t - 1)
    logits = jnp.log(jnp.asarray(ngram_probabilities(max_ngram), jnp.float32))
    lengths = jax.random.categorical(rng, logits, shape=(b, t)).astype(jnp.int32) + 1
    first_word = jnp.cumsum(lengths, axis=-1) - lengths  # the word each span starts at
    # Spans starting past the row's last word land in the extra column `t`, dropped.
    column = jnp.minimum(first_word, t)
    begins = jnp.zeros((b, t + 1), bool).at[rows, column].set(True)[:, :t]
    drawn = jnp.zeros((b, t + 1), jnp.int32).at[rows, column].set(lengths)[:, :t]
    span_starts = starts & jnp.take_along_axis(begins, word_id, axis=-1)
    return span_starts, jnp.where(span_starts, jnp.take_along_axis(drawn, word_id, axis=-1), 0)


def select_ngrams(rng: jax.Array, maskable: jax.Array, word_starts: jax.Array, num: jax.Array,
                  max_ngram: int, segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(selected, span_starts, span_lengths) [B, T]: whole n-gram spans (`ngram_spans`) chosen as whole
    words are, at most `num[b]` tokens per row (per segment with `segment_ids`, see select_whole_words)."""
    k_spans, k_order = jax.random.split(rng)
    if segment_ids is not None:  # a span never runs past its segment's last word
        word_starts = word_starts | (segment_ids != jnp.pad(segment_ids[:, :-1], ((0, 0), (1, 0))))
        maskable = maskable & (segment_ids > 0)
    starts, lengths = ngram_spans(k_spans, maskable, word_starts, max_ngram)
    return select_whole_words(k_order, maskable, starts, num, segment_ids), starts, lengths


def random_non_special(rng: jax.Array, shape: tuple[int, ...], vocab_size: int,
                       special_ids: tuple[int, ...]) -> jax.Array:
    """int32 ids drawn uniformly from [0, vocab_size) minus `special_ids` (sorted, unique)."""
    specials = [s for s in special_ids if 0 <= s < vocab_size]
    draw = jax.random.randint(rng, shape, 0, vocab_size - len(specials), dtype=jnp.int32)
    # Walk the sorted specials, shifting past each one: maps rank r to the r-th allowed id.
    for s in specials:
        draw = draw + (draw >= s).astype(jnp.int32)
    return draw


def replace_selected(rng: jax.Array, ids: jax.Array, selected: jax.Array, config: MaskingConfig) -> jax.Array:
    """The model input: selected tokens become [MASK] / a random token / themselves (per-token draw)."""
    k_action, k_random = jax.random.split(rng)
    u = jax.random.uniform(k_action, ids.shape)
    to_mask = selected & (u < config.mask_replace_prob)
    to_random = selected & (u >= config.mask_replace_prob) & \
        (u < config.mask_replace_prob + config.random_replace_prob)
    inputs = jnp.where(to_mask, jnp.asarray(config.mask_token_id, ids.dtype), ids)
    if config.random_replace_prob > 0:
        random_ids = random_non_special(k_random, ids.shape, config.vocab_size, config.special_ids)
        inputs = jnp.where(to_random, random_ids.astype(ids.dtype), inputs)
    return inputs


def dense_to_gather(selected: jax.Array, ids: jax.Array, max_predictions: int
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(positions, ids, weights) [B, P] of the selected tokens in ascending position; 0-padded."""
    b, t = selected.shape
    k = min(max_predictions, t)
    # Earlier positions score higher, unselected ones score 0: top-k lists selections in order.
    score = jnp.where(selected, t - jnp.arange(t)[None, :], 0)
    values, positions = jax.lax.top_k(score, k)
    used = values > 0
    positions = jnp.where(used, positions, 0).astype(jnp.int32)
    gathered = jnp.where(used, jnp.take_along_axis(ids, positions, axis=-1), 0).astype(jnp.int32)
    weights = used.astype(jnp.float32)
    if k < max_predictions:
        pad = ((0, 0), (0, max_predictions - k))
        positions, gathered, weights = (jnp.pad(x, pad) for x in (positions, gathered, weights))
    return positions, gathered, weights


@functools.partial(jax.jit, static_argnames=("config", "max_segments"))
def mask_tokens(rng: jax.Array, ids: jax.Array, config: MaskingConfig, *,
                attention_mask: jax.Array | None = None,
                maskable: jax.Array | None = None,
                word_starts: jax.Array | None = None,
                selection_weights: jax.Array | None = None,
                segment_ids: jax.Array | None = None,
                max_segments: int = 0) -> MaskedTokens:
    """One dynamic masking draw for a batch of token ids [B, T].

    `maskable` (bool [B, T]) overrides the default "not a special id and not padding";
    `word_starts` (bool [B, T], first piece of each word) is required when
    `config.whole_word` is set. With `config.max_ngram` > 1 the selected units are n-gram spans of
    whole words (of tokens when whole_word is off), see `ngram_spans`. `selection_weights` (float
    [B, T]) makes token selection non-uniform (DistilBERT's frequency-smoothed masking; single tokens
    only, not with whole words or n-grams).
    Packed rows: `segment_ids` [B, T] and their most examples per row `max_segments` give every
    example its own budget (see the module docstring) and `packed_slots` gather slots.
    """
    if selection_weights is not None and (config.whole_word or config.max_ngram > 1):
        raise MaskingConfigError("MaskingConfig.whole_word / max_ngram: weighted token selection picks single "
                                 "tokens, not words or spans; drop the selection weights or set whole_word=False "
                                 "and max_ngram=1")
    if config.whole_word and word_starts is None:
        raise MaskingConfigError("MaskingConfig.whole_word is set but no word_starts were given; "
                                 "pass word_starts (the tokenizer's word_starts) or set whole_word=False")
    if segment_ids is not None and selection_weights is not None:
        raise MaskingConfigError("mask_tokens: weighted token selection (DistilBERT's mask_smoothing) is not "
                                 "implemented for packed rows; set data.pack_examples=False or mask_smoothing=0")
    if segment_ids is not None:
        return _mask_packed(rng, ids, config, attention_mask, maskable, word_starts, segment_ids, max_segments)
    ids = jnp.asarray(ids)
    if maskable is None:
        maskable = maskable_positions(ids, config.special_ids, attention_mask)
    else:
        maskable = jnp.asarray(maskable, bool)
    k_select, k_replace = jax.random.split(rng)
    num = num_to_predict(maskable, config.mask_prob, config.max_predictions)
    if config.max_ngram > 1:
        words = jnp.asarray(word_starts) if config.whole_word else jnp.ones(ids.shape, bool)
        selected, _, _ = select_ngrams(k_select, maskable, words, num, config.max_ngram)
    elif config.whole_word:
        selected = select_whole_words(k_select, maskable, jnp.asarray(word_starts), num)
    else:
        selected = select_tokens(k_select, maskable, num, config.max_predictions, selection_weights)
    return _masked_tokens(k_replace, ids, selected, config, config.max_predictions)


def _masked_tokens(rng: jax.Array, ids: jax.Array, selected: jax.Array, config: MaskingConfig,
                   slots: int) -> MaskedTokens:
    """Both forms of a selection, the selected tokens replaced 80/10/10."""
    inputs = replace_selected(rng, ids, selected, config)
    labels = jnp.where(selected, ids, 0).astype(jnp.int32)
    positions, masked_ids, masked_weights = dense_to_gather(selected, ids, slots)
    return MaskedTokens(inputs=inputs.astype(jnp.int32), labels=labels, weights=selected.astype(jnp.float32),
                        masked_positions=positions, masked_ids=masked_ids, masked_weights=masked_weights)


def _mask_packed(rng: jax.Array, ids: jax.Array, config: MaskingConfig, attention_mask: jax.Array | None,
                 maskable: jax.Array | None, word_starts: jax.Array | None, segment_ids: jax.Array,
                 max_segments: int) -> MaskedTokens:
    """`mask_tokens` on packed rows: the budget per segment, `packed_slots` gather slots."""
    if max_segments < 1:
        raise MaskingConfigError("mask_tokens: packed rows (segment_ids) need max_segments >= 1, the most "
                                 "examples a row holds")
    ids = jnp.asarray(ids)
    segment_ids = jnp.asarray(segment_ids, jnp.int32)
    if maskable is None:
        maskable = maskable_positions(ids, config.special_ids, attention_mask)
    maskable = jnp.asarray(maskable, bool) & (segment_ids > 0)
    k_select, k_replace = jax.random.split(rng)
    num = num_per_segment(maskable, segment_ids, config.mask_prob, config.max_predictions)
    if config.max_ngram > 1:
        words = jnp.asarray(word_starts, bool) if config.whole_word else jnp.ones(ids.shape, bool)
        selected, _, _ = select_ngrams(k_select, maskable, words, num, config.max_ngram, segment_ids)
    elif config.whole_word:
        selected = select_whole_words(k_select, maskable, jnp.asarray(word_starts), num, segment_ids)
    else:
        selected = select_tokens_per_segment(k_select, maskable, segment_ids, num)
    slots = packed_slots(ids.shape[-1], config.mask_prob, config.max_predictions, max_segments)
    return _masked_tokens(k_replace, ids, selected, config, slots)
