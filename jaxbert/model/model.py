"""EncoderModel: embeddings → encoder → pooler → the configured heads, one module for every family."""

from __future__ import annotations

from dataclasses import dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig
from jaxbert.model.embeddings import Embeddings
from jaxbert.model.encoder import Encoder
from jaxbert.model.heads import ClassificationHead, MLMHead, PairHead, Pooler, RTDHead, SpanHead, TokenHead


@jax.tree_util.register_dataclass
@dataclass
class ModelOutput:
    """What a forward pass returns (the contract of DESIGN.md)."""

    last_hidden_state: jax.Array
    pooler_output: jax.Array | None = None
    hidden_states: tuple[jax.Array, ...] | None = None
    logits: dict[str, jax.Array] = field(default_factory=dict)


class EncoderModel(nn.Module):
    """The whole model. `masked_positions` [B, P] restricts MLM logits to those positions ([B, P, V]).

    logits keys: pretraining heads "mlm" [B,T,V], "nsp"/"sop" [B,2], "rtd" [B,T]; task heads
    "classification" [B,num_labels], "span" [B,T,2] (start, end), "token" [B,T,num_labels].

    Packed rows (`jaxbert.model.packing`): `segment_ids` [B, T] (examples 1, 2, ..., padding 0) keeps
    attention within each example and restarts positions there; `segment_starts` [B, K] (each example's
    first position) makes the per-example outputs per example: pooler_output [B, K, H], "nsp"/"sop"
    [B, K, 2], "classification" [B, K, num_labels].
    """

    config: ModelConfig

    @nn.compact
    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        output_hidden_states: bool = False,
        masked_positions: jax.Array | None = None,
        heads: tuple[str, ...] | None = None,
        segment_ids: jax.Array | None = None,
        segment_starts: jax.Array | None = None,
    ) -> ModelOutput:
        cfg = self.config
        input_ids = jnp.asarray(input_ids, jnp.int32)
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        mask = jnp.asarray(attention_mask) > 0
        if token_type_ids is not None:
            token_type_ids = jnp.asarray(token_type_ids, jnp.int32)

        if segment_ids is not None:
            segment_ids = jnp.asarray(segment_ids, jnp.int32)
        starts = None if segment_starts is None else jnp.asarray(segment_starts, jnp.int32)

        embeddings = Embeddings(cfg, deterministic, name="embeddings")
        x = embeddings(input_ids, token_type_ids, segment_ids)
        last, per_layer = Encoder(cfg, deterministic, output_hidden_states, name="encoder")(x, mask, segment_ids)

        hidden_states = None
        if output_hidden_states:
            hidden_states = (x, *(per_layer[i] for i in range(cfg.num_layers)))
        pooled = Pooler(cfg, name="pooler")(last, starts) if cfg.pooler else None

        wanted = cfg.heads if heads is None else heads
        logits: dict[str, jax.Array] = {}
        if "mlm" in wanted:
            h = last
            if masked_positions is not None:
                h = jnp.take_along_axis(last, jnp.asarray(masked_positions, jnp.int32)[..., None], axis=1)
            logits["mlm"] = MLMHead(cfg, name="mlm_head")(h, embeddings.attend)
        for pair in ("nsp", "sop"):
            if pair in wanted:
                logits[pair] = PairHead(cfg, name=f"{pair}_head")(pooled)
        if "rtd" in wanted:
            logits["rtd"] = RTDHead(cfg, name="rtd_head")(last)
        if cfg.task == "classification":
            logits["classification"] = ClassificationHead(cfg, deterministic, name="task_head")(
                last, pooled, starts=starts)
        elif cfg.task == "span":
            logits["span"] = SpanHead(cfg, deterministic, name="task_head")(last)
        elif cfg.task == "token":
            logits["token"] = TokenHead(cfg, deterministic, name="task_head")(last)
        return ModelOutput(last, pooled, hidden_states, logits)
