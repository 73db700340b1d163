"""Masking shared by every masking objective (MLM, ELECTRA, distillation): the config from `objective.*`
options, the tokenizer's special ids and word boundaries as device tables (or, when `data.word_segmenter`
is set, the dataset's stored `word_starts`), and one on-device draw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig
from jaxbert.data.masking import WORD_STARTS, MaskedTokens, MaskingConfig, mask_tokens
from jaxbert.data.packing import SEGMENT_IDS, check_packing, default_max_per_row
from jaxbert.errors import JaxbertError
from jaxbert.tokenize.base import SpecialTokens

# BERT's uncased vocabulary layout: what a model without a tokenizer (benchmarks, tests) masks with.
BERT_SPECIAL = SpecialTokens(pad=0, unk=100, cls=101, sep=102, mask=103)
# The word tables' stand-in when the words come with the data: each batch's `word_starts` field.
FROM_DATA = "data"


def special_tokens_of(tokenizer: Any, model_config: ModelConfig) -> SpecialTokens:
    """The tokenizer's special ids, or BERT's layout when there is no tokenizer."""
    if tokenizer is not None:
        return tokenizer.special
    if model_config.vocab_size <= BERT_SPECIAL.mask:
        # Tiny test vocabularies: the first five ids are the specials.
        return SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)
    return BERT_SPECIAL


def word_start_tables(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(continues[V], breaks_after[V]) bool tables for on-device whole-word boundaries.

    Derived through the tokenizer's public `word_starts`: `v` continues a word when it is not a
    start after [UNK]; `v` breaks after itself when a continuing piece following it is a start.
    """
    vocab = int(tokenizer.vocab_size)
    ids = np.arange(vocab, dtype=np.int64)
    unk = np.full(vocab, tokenizer.special.unk, dtype=np.int64)
    continues = ~tokenizer.word_starts(np.stack([unk, ids], axis=1))[:, 1]
    breaks_after = np.zeros(vocab, dtype=bool)
    if continues.any():
        piece = np.full(vocab, int(np.flatnonzero(continues)[0]), dtype=np.int64)
        breaks_after = tokenizer.word_starts(np.stack([ids, piece], axis=1))[:, 1]
    return continues, breaks_after


def word_starts_on_device(ids: jax.Array, continues: jax.Array, breaks_after: jax.Array) -> jax.Array:
    """bool [B, T]: tokens that begin a word, from the two vocabulary tables."""
    starts = ~continues[ids]
    starts = starts.at[:, 1:].set(starts[:, 1:] | breaks_after[ids[:, :-1]])
    return starts.at[:, 0].set(True)


def masking_from_options(opts: Mapping[str, Any], model: ModelConfig, tokenizer: Any = None,
                         data: Mapping[str, Any] | None = None,
                         **defaults: Any) -> tuple[MaskingConfig, tuple[Any, Any] | str | None]:
    """(MaskingConfig, word boundaries) from `objective.{mask_prob, max_predictions, mask_replace_prob,
    random_replace_prob, whole_word, ngram}`; `defaults` are the objective's own defaults. `ngram` > 1 is
    ALBERT's n-gram masking (spans of up to `ngram` words, p(n) ∝ 1/n).

    Word boundaries: None (token masking), the tokenizer's tables (the `##` rule), or FROM_DATA when
    `data.word_segmenter` is set (each batch carries the segmenter's `word_starts`).

    The vocabulary must be the model's: a mismatch is a ConfigError naming config.model.vocab_size.
    """
    base = dict(mask_prob=0.15, max_predictions=20, mask_replace_prob=0.8, random_replace_prob=0.1,
                whole_word=False, ngram=1)
    base.update(defaults)
    get = lambda key: opts.get(key, base[key]) if hasattr(opts, "get") else base[key]
    special = special_tokens_of(tokenizer, model)
    vocab = tokenizer.vocab_size if tokenizer is not None else model.vocab_size
    if vocab != model.vocab_size:
        raise ConfigError(f"config.model.vocab_size: the model has {model.vocab_size} ids but the tokenizer has "
                          f"{vocab}; set vocab_size to the tokenizer's")
    masking = MaskingConfig(
        mask_token_id=special.mask, vocab_size=vocab, special_ids=special.all(),
        mask_prob=float(get("mask_prob")), max_predictions=int(get("max_predictions")),
        mask_replace_prob=float(get("mask_replace_prob")), random_replace_prob=float(get("random_replace_prob")),
        whole_word=bool(get("whole_word")), max_ngram=int(get("ngram")))
    tables = None
    if masking.whole_word and data is not None and data.get("word_segmenter", ""):
        return masking, FROM_DATA
    if masking.whole_word:
        if tokenizer is None:
            raise ConfigError("config.objective.whole_word: whole-word masking needs the tokenizer's word "
                              "boundaries; give a tokenizer or set whole_word=False")
        tables = word_start_tables(tokenizer)
    return masking, tables


def token_selection_probs(opts: Mapping[str, Any], masking: MaskingConfig) -> np.ndarray | None:
    """DistilBERT's frequency-smoothed selection probabilities [V] from `objective.{mask_smoothing,
    token_counts}` (a .npy of per-id counts), or None for uniform selection (mask_smoothing 0)."""
    from jaxbert.data.token_counts import load_counts, smoothed_token_probs

    smoothing = float(opts.get("mask_smoothing", 0.0) or 0.0) if hasattr(opts, "get") else 0.0
    if smoothing == 0.0:
        return None
    path = str(opts.get("token_counts", "") or "")
    if not path:
        raise ConfigError("config.objective.token_counts: frequency-smoothed masking (mask_smoothing="
                          f"{smoothing}) needs per-token counts; give a .npy file of counts, or run `jaxbert distill`, "
                          "which counts the training data, or set mask_smoothing=0")
    if masking.whole_word or masking.max_ngram > 1:
        raise ConfigError("config.objective.whole_word: frequency-smoothed masking selects single tokens, not words "
                          "or n-gram spans; set whole_word=False and ngram=1, or mask_smoothing=0")
    counts = load_counts(path, masking.vocab_size)
    return smoothed_token_probs(counts, smoothing, masking.special_ids).astype(np.float32)


def word_fields(word_tables: Any, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The batch field the masking reads besides the encoder's: `word_starts` when words come with the data."""
    return {WORD_STARTS: ((batch_size, seq_len), np.int32)} if word_tables == FROM_DATA else {}


def packed_examples(config: Any) -> int:
    """The most examples a packed row holds (`data.pack_examples`, `data.max_examples_per_row`), 0 unpacked."""
    data = config.get("data") if hasattr(config, "get") else None
    if data is None or not bool(data.get("pack_examples", False)):
        return 0
    seq_len = int(config.train.seq_len)
    k = int(data.get("max_examples_per_row", 0)) or default_max_per_row(seq_len)
    try:
        check_packing(seq_len, k)
    except JaxbertError as e:
        raise ConfigError(f"config.data.{e}") from None
    return k


def packed_fields(max_segments: int, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The batch field packed rows add: `segment_ids` [B, T] (none when unpacked)."""
    return {SEGMENT_IDS: ((batch_size, seq_len), np.int32)} if max_segments else {}


def draw_mask(rng: Any, ids: Any, attention: Any, masking: MaskingConfig,
              word_tables: tuple[Any, Any] | str | None = None,
              batch: Mapping[str, Any] | None = None, selection_probs: Any = None, max_segments: int = 0
              ) -> MaskedTokens:
    """One on-device masking draw of `ids` [B, T] (whole words when the config says so; tokens chosen in
    proportion to `selection_probs[id]` when given); with `max_segments` (packed rows) each example of the
    batch's `segment_ids` gets its own budget."""
    word_starts = None
    if masking.whole_word and word_tables == FROM_DATA:
        word_starts = jnp.asarray(batch[WORD_STARTS]).astype(bool)
    elif masking.whole_word:
        continues, breaks_after = (jnp.asarray(t) for t in word_tables)
        word_starts = word_starts_on_device(ids, continues, breaks_after)
    weights = None if selection_probs is None else jnp.asarray(selection_probs)[ids]
    if max_segments:
        return mask_tokens(rng, ids, masking, attention_mask=attention, word_starts=word_starts,
                           selection_weights=weights, segment_ids=batch[SEGMENT_IDS], max_segments=max_segments)
    return mask_tokens(rng, ids, masking, attention_mask=attention, word_starts=word_starts,
                       selection_weights=weights)
