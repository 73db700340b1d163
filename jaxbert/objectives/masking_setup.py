"""Masking for objectives beyond plain MLM (ELECTRA, distillation): the config from `objective.*`
options, and one on-device draw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from jaxbert.config import ConfigError, ModelConfig
from jaxbert.data.masking import MaskedTokens, MaskingConfig, mask_tokens
from jaxbert.objectives.mlm import special_tokens_of, word_start_tables, word_starts_on_device


def masking_from_options(opts: Mapping[str, Any], model: ModelConfig, tokenizer: Any = None,
                         **defaults: Any) -> tuple[MaskingConfig, tuple[Any, Any] | None]:
    """(MaskingConfig, whole-word tables or None) from `objective.{mask_prob, max_predictions,
    mask_replace_prob, random_replace_prob, whole_word}`; `defaults` are the objective's own defaults.

    The vocabulary must be the model's: a mismatch is a ConfigError naming config.model.vocab_size.
    """
    base = dict(mask_prob=0.15, max_predictions=20, mask_replace_prob=0.8, random_replace_prob=0.1,
                whole_word=False)
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
        whole_word=bool(get("whole_word")))
    tables = None
    if masking.whole_word:
        if tokenizer is None:
            raise ConfigError("config.objective.whole_word: whole-word masking needs the tokenizer's word "
                              "boundaries; give a tokenizer or set whole_word=False")
        tables = word_start_tables(tokenizer)
    return masking, tables


def draw_mask(rng: Any, ids: Any, attention: Any, masking: MaskingConfig,
              word_tables: tuple[Any, Any] | None = None) -> MaskedTokens:
    """One on-device masking draw of `ids` [B, T] (whole words when the config says so)."""
    word_starts = None
    if masking.whole_word:
        continues, breaks_after = (jnp.asarray(t) for t in word_tables)
        word_starts = word_starts_on_device(ids, continues, breaks_after)
    return mask_tokens(rng, ids, masking, attention_mask=attention, word_starts=word_starts)
