"""Masked-LM pretraining: BERT (MLM + NSP), RoBERTa (MLM only), ALBERT (MLM + SOP).

Masking is dynamic and on device: every step draws a fresh 80/10/10 mask from the step's rng
(jaxbert.data.masking), and the MLM head runs only at the masked positions (gather form,
`max_predictions` per sequence), as in BERT's reference code.

Packed rows (`data.pack_examples`: several examples per row, `segment_ids`): each example is masked
with its own budget, and the pair head reads each example's own [CLS] — the pooled output at the
segment's first token — against that example's label in slot k of the [B, K] label field; the pair
loss is the mean over the examples present (so a row of three pairs counts three times).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.data.masking import MaskingConfig, packed_slots
from jaxbert.data.packing import SEGMENT_IDS
from jaxbert.model import EncoderModel, logical_axes
from jaxbert.model.packing import segment_starts
from jaxbert.model.params import init_boxed
from jaxbert.objectives.base import Metrics, Objective, PyTree, encoder_fields, register_objective
from jaxbert.objectives.masking_setup import (
    draw_mask,
    masking_from_options,
    packed_examples,
    packed_fields,
    word_fields,
)

PAIR_TASKS = ("nsp", "sop", "none")
# The batch field holding each pair task's label (the pretraining data's names; 1 = random next / swapped).
PAIR_LABELS = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}


def attention_mask_of(batch: Mapping[str, jax.Array], pad_id: int) -> jax.Array:
    """1 for real tokens: the batch's attention_mask, else positions below `length`, else ids != pad."""
    if "attention_mask" in batch:
        return batch["attention_mask"].astype(jnp.int32)
    ids = batch["input_ids"]
    if "length" in batch:
        return (jnp.arange(ids.shape[-1])[None, :] < batch["length"][:, None]).astype(jnp.int32)
    return (ids != pad_id).astype(jnp.int32)


def masked_lm_metrics(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean cross-entropy, accuracy) over the weighted prediction slots; logits [B, P, V] float32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    denom = jnp.maximum(weights.sum(), 1.0)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return (nll * weights).sum() / denom, (correct * weights).sum() / denom


def pair_metrics(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
    """(mean cross-entropy, accuracy) of a 2-way sentence-pair classifier; logits [B, 2] (packed: [B, K, 2]
    with `weights` [B, K], 1 where slot k holds an example)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    labels = labels.astype(jnp.int32)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    if weights is None:
        return nll.mean(), correct.mean()
    w = weights.astype(jnp.float32)
    denom = jnp.maximum(w.sum(), 1.0)
    return (nll * w).sum() / denom, (correct * w).sum() / denom


def packed_inputs(batch: Mapping[str, jax.Array], max_segments: int
                  ) -> tuple[jax.Array | None, jax.Array | None, jax.Array | None]:
    """(segment_ids, segment starts [B, K], present [B, K]) of a packed batch; Nones when unpacked."""
    if not max_segments:
        return None, None, None
    segments = batch[SEGMENT_IDS].astype(jnp.int32)
    starts, present = segment_starts(segments, max_segments)
    return segments, starts, present


def encoder_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token of the embedding projection and encoder (matmuls, attention included)."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    per_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq_len * h
    projection = 2 * cfg.embed_dim * h if cfg.has_projection else 0
    return float(cfg.num_layers * per_layer + projection)


class MaskedLM(Objective):
    """MLM with an optional sentence-pair task; loss = mlm_loss + pair_loss."""

    name = "mlm"

    def __init__(self, model_config: ModelConfig, masking: MaskingConfig, pair_task: str = "nsp",
                 word_tables: tuple[np.ndarray, np.ndarray] | str | None = None, packed: int = 0) -> None:
        if pair_task not in PAIR_TASKS:
            raise ConfigError(f"config.objective.pair_task: unknown pair task {pair_task!r}; "
                              f"use one of {', '.join(PAIR_TASKS)}")
        heads = ("mlm",) + (() if pair_task == "none" else (pair_task,))
        # The exported model holds exactly the heads this objective trains.
        self.model_config = model_config.replace(heads=heads, pooler=model_config.pooler or pair_task != "none")
        self.masking = masking
        self.pair_task = pair_task
        self.word_tables = word_tables
        self.packed = int(packed)  # the most examples a packed row holds; 0: rows are not packed

    # ---- params ---------------------------------------------------------------------
    def init(self, rng: jax.Array) -> PyTree:
        import flax.linen as nn

        return nn.unbox(init_boxed(self.model_config, rng))

    def param_axes(self) -> PyTree:
        return logical_axes(self.model_config)

    # ---- loss -----------------------------------------------------------------------
    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        del frozen
        cfg = self.model_config
        k_mask, k_dropout = jax.random.split(rng)
        ids = batch["input_ids"].astype(jnp.int32)
        attention = attention_mask_of(batch, cfg.pad_token_id)
        segments, starts, present = packed_inputs(batch, self.packed)
        masked = draw_mask(k_mask, ids, attention, self.masking, self.word_tables, batch,
                           max_segments=self.packed)
        out = EncoderModel(cfg).apply(
            {"params": params}, masked.inputs, attention, batch.get("token_type_ids"),
            deterministic=deterministic, masked_positions=masked.masked_positions,
            segment_ids=segments, segment_starts=starts,
            rngs=None if deterministic else {"dropout": k_dropout})
        mlm_loss, mlm_acc = masked_lm_metrics(out.logits["mlm"], masked.masked_ids, masked.masked_weights)
        metrics = {"mlm_loss": mlm_loss, "mlm_accuracy": mlm_acc}
        loss = mlm_loss
        if self.pair_task != "none":
            pair_loss, pair_acc = pair_metrics(out.logits[self.pair_task], batch[PAIR_LABELS[self.pair_task]],
                                               present)
            metrics[f"{self.pair_task}_loss"] = pair_loss
            metrics[f"{self.pair_task}_accuracy"] = pair_acc
            loss = loss + pair_loss
        metrics["loss"] = loss
        return loss, metrics

    # ---- shapes & cost --------------------------------------------------------------
    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        fields = encoder_fields(self.model_config, batch_size, seq_len)
        if self.pair_task != "none":
            shape = (batch_size, self.packed) if self.packed else (batch_size,)
            fields[PAIR_LABELS[self.pair_task]] = (shape, np.int32)
        return {**fields, **word_fields(self.word_tables, batch_size, seq_len),
                **packed_fields(self.packed, batch_size, seq_len)}

    def prediction_slots(self, seq_len: int) -> int:
        """MLM head positions per row: max_predictions, or a packed row's `packed_slots`."""
        m = self.masking
        if self.packed:
            return packed_slots(seq_len, m.mask_prob, m.max_predictions, self.packed)
        return min(m.max_predictions, seq_len)

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """6 × forward matmul FLOPs: encoder on every token, the MLM head on its prediction slots (and the
        pair head once per packed example slot)."""
        cfg = self.model_config
        predictions = self.prediction_slots(seq_len)
        head = 2 * cfg.hidden_size * cfg.embed_dim + 2 * cfg.embed_dim * cfg.vocab_size
        pooled = 2 * cfg.hidden_size * cfg.hidden_size + 2 * cfg.hidden_size * 2 if self.pair_task != "none" else 0
        pooled *= max(1, self.packed)
        forward = batch_size * (seq_len * encoder_flops_per_token(cfg, seq_len) + predictions * head + pooled)
        return 3.0 * forward

    def progress_metrics(self) -> tuple[str, ...]:
        return ("loss", "mlm_accuracy") + (() if self.pair_task == "none" else (f"{self.pair_task}_accuracy",))


@register_objective("mlm")
def make_masked_lm(config: Any, tokenizer: Any = None) -> MaskedLM:
    """MaskedLM from an experiment config: `model`, `objective.{pair_task, mask_prob, max_predictions,
    whole_word, ngram, mask_replace_prob, random_replace_prob}`, `data.word_segmenter` (word starts stored
    with the data)."""
    opts = config.objective
    model = resolve_model_config(config.model.to_dict() if hasattr(config.model, "to_dict") else config.model)
    masking, tables = masking_from_options(opts, model, tokenizer, data=config.get("data"))
    return MaskedLM(model, masking, str(opts.get("pair_task", "nsp")), tables, packed=packed_examples(config))
