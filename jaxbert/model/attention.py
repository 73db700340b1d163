"""Multi-head self-attention with a choice of kernel: plain XLA, jax.nn.dot_product_attention, cuDNN, or
Pallas splash attention on TPU (jaxbert.model.splash)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig
from jaxbert.model.layers import ACTIVATIONS, LayerNorm, dense, dtype_of
from jaxbert.model.packing import same_segment
from jaxbert.model.splash import splash_attention

NEG_INF = -1e30  # large finite: fully padded rows stay finite instead of producing NaN


def xla_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, dropout_rate: float,
                  deterministic: bool, dropout_rng: jax.Array | None, segment_ids: jax.Array | None = None
                  ) -> jax.Array:
    """softmax(q k^T / sqrt(d) + mask) v with softmax in float32; q, k, v: [B, T, N, D]; mask [B, T] bool.

    With `segment_ids` [B, T] (packed rows) token i attends to token j iff their ids match, as in splash.
    """
    depth = q.shape[-1]
    scores = jnp.einsum("bqnd,bknd->bnqk", q, k, preferred_element_type=jnp.float32)
    scores = scores / jnp.sqrt(jnp.float32(depth))
    scores = jnp.where(attention_allowed(mask, segment_ids), scores, NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1)
    if not deterministic and dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
    return jnp.einsum("bnqk,bknd->bqnd", probs.astype(v.dtype), v)


def attention_allowed(mask: jax.Array, segment_ids: jax.Array | None = None, full: bool = False) -> jax.Array:
    """bool [B, 1, 1 or T, T]: which keys each query may attend to.

    Unpacked: every real key (mask [B, T]), broadcast over queries unless `full` asks for [B, 1, T, T].
    Packed (`segment_ids` [B, T]): the block-diagonal mask of keys in the query's own segment.
    """
    if segment_ids is not None:
        return same_segment(segment_ids)
    allowed = mask[:, None, None, :]
    if full:
        b, t = mask.shape
        allowed = jnp.broadcast_to(allowed, (b, 1, t, t))
    return allowed


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, implementation: str | None,
                    segment_ids: jax.Array | None = None):
    """jax.nn.dot_product_attention: cuDNN flash attention on GPU when asked (bf16/fp16 only).

    Packed rows pass the block-diagonal segment mask (cuDNN takes it as its mask input, at the full
    [B, 1, Tq, Tk] shape it wants). Fused kernels have no attention-probability dropout; attention_dropout
    is not applied on this path.
    """
    allowed = attention_allowed(mask, segment_ids, full=implementation == "cudnn")
    return jax.nn.dot_product_attention(q, k, v, mask=allowed, implementation=implementation)


class SelfAttention(nn.Module):
    """Post-LN attention block: LayerNorm(x + Dropout(Wo · attention(Wq x, Wk x, Wv x)))."""

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, segment_ids: jax.Array | None = None) -> jax.Array:
        """x [B, T, H]; mask [B, T] bool (padding); `segment_ids` [B, T] int for packed rows (0 = padding)."""
        cfg = self.config
        heads = (cfg.num_heads, cfg.head_dim)
        q = dense(cfg, heads, ("hidden", "heads", "kv"), name="query")(x)
        k = dense(cfg, heads, ("hidden", "heads", "kv"), name="key")(x)
        v = dense(cfg, heads, ("hidden", "heads", "kv"), name="value")(x)
        q = nn.with_logical_constraint(q, ("act_batch", "act_length", "act_heads", None))
        if cfg.attention_kernel == "xla":
            rng = None
            if not self.deterministic and cfg.attention_dropout > 0.0:
                rng = self.make_rng("dropout")
            ctx = xla_attention(q, k, v, mask, cfg.attention_dropout, self.deterministic, rng, segment_ids)
        elif cfg.attention_kernel == "splash":
            ctx = splash_attention(q, k, v, mask.astype(jnp.int32) if segment_ids is None else segment_ids)
        else:
            impl = "cudnn" if cfg.attention_kernel == "cudnn" else None
            ctx = fused_attention(q, k, v, mask, impl, segment_ids)
        out = dense(cfg, cfg.hidden_size, ("heads", "kv", "hidden"), axis=(-2, -1), name="out")(ctx)
        out = nn.Dropout(cfg.hidden_dropout)(out, deterministic=self.deterministic)
        return LayerNorm(cfg, axis_name="hidden", name="norm")(x + out)


class FeedForward(nn.Module):
    """Post-LN FFN block: LayerNorm(x + Dropout(W2 · act(W1 x))).

    `inner_dropout` also drops the activations before W2, as XLNet's position-wise FFN does.
    """

    config: ModelConfig
    deterministic: bool = True
    inner_dropout: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = dense(cfg, cfg.intermediate_size, ("hidden", "mlp"), name="intermediate")(x)
        h = ACTIVATIONS[cfg.hidden_act](h)
        if self.inner_dropout:
            h = nn.Dropout(cfg.hidden_dropout)(h, deterministic=self.deterministic)
        h = nn.with_logical_constraint(h, ("act_batch", "act_length", "act_mlp"))
        out = dense(cfg, cfg.hidden_size, ("mlp", "hidden"), name="output")(h)
        out = nn.Dropout(cfg.hidden_dropout)(out, deterministic=self.deterministic)
        y = LayerNorm(cfg, axis_name="hidden", name="norm")(x + out)
        return y.astype(dtype_of(cfg.compute_dtype))
