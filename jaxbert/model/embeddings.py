"""Token + position + segment embeddings, LayerNorm, and ALBERT/ELECTRA's factorized E→H projection."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig
from jaxbert.model.layers import LayerNorm, dense, dtype_of, kernel_init
from jaxbert.model.packing import positions_in_segment


def position_ids(input_ids: jax.Array, config: ModelConfig, segment_ids: jax.Array | None = None) -> jax.Array:
    """BERT: 0..T-1. RoBERTa (position_offset>0): padding sits at the offset, real tokens count from offset+1.

    With `segment_ids` (packed rows) the count restarts at every segment, so each packed example gets the
    positions it has alone.
    """
    if segment_ids is None:
        if config.position_offset == 0:
            # 0..T-1 per row, built from input_ids' own shape: converters that trace symbolic shapes (jax2onnx)
            # cannot broadcast an arange of the symbolic length to [batch, length]
            return jnp.cumsum(jnp.ones_like(input_ids, dtype=jnp.int32), axis=-1) - 1
        real = (input_ids != config.pad_token_id).astype(jnp.int32)
        return jnp.cumsum(real, axis=-1) * real + config.position_offset
    offsets = positions_in_segment(segment_ids)
    if config.position_offset == 0:
        return offsets
    real = ((input_ids != config.pad_token_id) & (segment_ids > 0)).astype(jnp.int32)
    return (offsets + 1) * real + config.position_offset


class Embeddings(nn.Module):
    config: ModelConfig
    deterministic: bool = True

    def setup(self) -> None:
        cfg = self.config
        e, pdt = cfg.embed_dim, dtype_of(cfg.param_dtype)
        self.word = nn.Embed(cfg.vocab_size, e, param_dtype=pdt,
                             embedding_init=kernel_init(cfg, ("vocab", "embed")))
        self.position = nn.Embed(cfg.max_position_embeddings, e, param_dtype=pdt,
                                 embedding_init=kernel_init(cfg, (None, "embed")))
        if cfg.type_vocab_size > 0:
            self.token_type = nn.Embed(cfg.type_vocab_size, e, param_dtype=pdt,
                                       embedding_init=kernel_init(cfg, (None, "embed")))
        self.norm = LayerNorm(cfg)
        self.dropout = nn.Dropout(cfg.hidden_dropout)
        if cfg.has_projection:
            self.projection = dense(cfg, cfg.hidden_size, ("embed", "hidden"))

    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array | None,
                 segment_ids: jax.Array | None = None) -> jax.Array:
        cfg = self.config
        x = self.word(input_ids) + self.position(position_ids(input_ids, cfg, segment_ids))
        if cfg.type_vocab_size > 0:
            if token_type_ids is None:
                token_type_ids = jnp.zeros_like(input_ids)
            x = x + self.token_type(token_type_ids)
        x = self.dropout(self.norm(x), deterministic=self.deterministic)
        x = x.astype(dtype_of(cfg.compute_dtype))
        if cfg.has_projection:
            x = self.projection(x)
        return x

    def attend(self, x: jax.Array) -> jax.Array:
        """Logits against the (tied) word embedding table: x [..., E] -> [..., V]."""
        table = self.word.embedding.astype(x.dtype)
        return jnp.einsum("...e,ve->...v", x, table)
