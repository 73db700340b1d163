"""XLNet (Yang et al. 2019): Transformer-XL layers with relative positions and two-stream self-attention.

Its own module rather than a mode of EncoderModel: there is no position table, every layer scores
queries against content, relative-position and relative-segment terms, and pretraining runs a second
(query) stream whose tokens see their context but not themselves. It reuses Dense, LayerNorm, the FFN,
the layer scan and the task heads. Arrays are batch-major ([B, T, ...]; the reference code and
transformers are time-major), and the param tree keeps EncoderModel's layout:

    embeddings/word/embedding [V, H], embeddings/mask_emb [1, 1, H]
    encoder/layers/attention/{query,key,value,position}/kernel  [L, H, heads, head_dim]  (no biases)
    encoder/layers/attention/out/kernel                         [L, heads, head_dim, H]
    encoder/layers/attention/{content,position,segment}_bias    [L, heads, head_dim]  (r_w, r_r, r_s)
    encoder/layers/attention/segment_embed                      [L, 2, heads, head_dim]
    encoder/layers/attention/norm, encoder/layers/ffn/{intermediate,output,norm}
    lm_head/bias [V] (decoder tied to embeddings/word), task_head/...

Masks follow transformers' XLNetModel: `perm_mask[b, i, j] = 1` stops position i from attending to j;
`target_mapping[b, m, j] = 1` makes prediction slot m the query of position j. The content stream lets
every position see itself; the query stream does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig
from jaxbert.model.attention import NEG_INF, FeedForward
from jaxbert.model.encoder import remat_layer, scan_layer
from jaxbert.model.heads import ClassificationHead, SpanHead, TokenHead
from jaxbert.model.layers import LayerNorm, dense, dtype_of, kernel_init, zeros_init
from jaxbert.model.model import ModelOutput


@jax.tree_util.register_dataclass
@dataclass
class XLNetOutput(ModelOutput):
    """ModelOutput plus XLNet's memory and query stream.

    `last_hidden_state` is always the content stream [B, T, H]; with a target_mapping the query stream's
    output is `query_hidden_state` [B, P, H] and logits["lm"] is [B, P, V] (else [B, T, V] from the content
    stream, as transformers' XLNetLMHeadModel). `mems` [L, B, M, H]: every layer's input, after the
    memory given, cut to the last `mem_len` positions; pass it back as `mems` to extend the context.
    """

    mems: jax.Array | None = None
    query_hidden_state: jax.Array | None = None


def relative_positions(qlen: int, klen: int, bi_data: bool, clamp_len: int) -> jax.Array:
    """float32 [D, qlen + klen]: the distances klen, klen - 1, ..., 1 - qlen that a relative encoding covers;
    D = 2 with `bi_data` (row 1 runs backward), else 1."""
    forward = jnp.arange(klen, -qlen, -1, dtype=jnp.float32)
    pos = jnp.stack([forward, -forward]) if bi_data else forward[None]
    return jnp.clip(pos, -clamp_len, clamp_len) if clamp_len > 0 else pos


def sinusoid(pos: jax.Array, width: int) -> jax.Array:
    """[..., R] distances -> [..., R, width] encodings: [sin(p / 10000^(2k/width)), cos(...)]."""
    inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, width, 2, dtype=jnp.float32) / width))
    angles = pos[..., None] * inv_freq
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def rel_shift(scores: jax.Array, klen: int) -> jax.Array:
    """[B, N, T, R] scores against distances klen..1-T -> [B, N, T, klen] scores against key positions.

    Query i (after mlen memory positions) and key j are mlen + i - j apart, entry qlen - i + j of the
    distance axis; the reshape trick of Transformer-XL shifts each row by its index without a gather.
    """
    b, n, t, r = scores.shape
    shifted = scores.reshape(b, n, r, t)[:, :, 1:, :].reshape(b, n, t, r - 1)
    return shifted[..., :klen]


def attention_masks(real: jax.Array, perm_mask: jax.Array | None, mlen: int) -> tuple[jax.Array, jax.Array]:
    """(content, query) bool [B, T, mlen + T]: which keys each position may attend to.

    A key is hidden when it is padding or the permutation mask hides it; memory is always visible.
    The content stream may always see itself, the query stream only where the permutation allows.
    """
    b, t = real.shape
    hidden = ~real[:, None, :]
    if perm_mask is not None:
        hidden = hidden | (jnp.asarray(perm_mask) > 0)
    query = jnp.broadcast_to(~hidden, (b, t, t))
    query = jnp.concatenate([jnp.ones((b, t, mlen), bool), query], axis=-1)
    itself = jnp.arange(mlen + t)[None, :] == (mlen + jnp.arange(t))[:, None]
    return query | itself[None], query


def segment_differs(token_type_ids: jax.Array | None, mlen: int) -> jax.Array | None:
    """bool [B, T, mlen + T]: query and key lie in different segments (memory counts as segment 0)."""
    if token_type_ids is None:
        return None
    types = jnp.asarray(token_type_ids, jnp.int32)
    keys = jnp.concatenate([jnp.zeros((types.shape[0], mlen), jnp.int32), types], axis=1)
    return types[:, :, None] != keys[:, None, :]


class RelativeAttention(nn.Module):
    """XLNet's post-LN relative attention; one set of weights serves the content and the query stream."""

    config: ModelConfig
    deterministic: bool = True

    def setup(self) -> None:
        cfg = self.config
        heads = (cfg.num_heads, cfg.head_dim)
        for name in ("query", "key", "value", "position"):
            setattr(self, name, dense(cfg, heads, ("hidden", "heads", "kv"), use_bias=False))
        self.out = dense(cfg, cfg.hidden_size, ("heads", "kv", "hidden"), axis=(-2, -1), use_bias=False)
        pdt = dtype_of(cfg.param_dtype)
        for name in ("content_bias", "position_bias", "segment_bias"):
            setattr(self, name, self.param(name, kernel_init(cfg, ("heads", "kv")), heads, pdt))
        self.segment_embed = self.param("segment_embed", kernel_init(cfg, (None, "heads", "kv")), (2, *heads), pdt)
        self.norm = LayerNorm(cfg, axis_name="hidden")
        self.prob_dropout = nn.Dropout(cfg.attention_dropout)
        self.out_dropout = nn.Dropout(cfg.hidden_dropout)

    def _scores_to_context(self, q: jax.Array, k: jax.Array, v: jax.Array, k_pos: jax.Array,
                           seg: jax.Array | None, allowed: jax.Array) -> jax.Array:
        """softmax((content + position + segment scores) / sqrt(d)) v; q [B, T, N, D], k, v [B, K, N, D]."""
        cdt = q.dtype
        ac = jnp.einsum("bind,bjnd->bnij", q + self.content_bias.astype(cdt), k, preferred_element_type=jnp.float32)
        q_pos = q + self.position_bias.astype(cdt)
        if k_pos.shape[0] == q.shape[0]:
            bd = jnp.einsum("bind,bjnd->bnij", q_pos, k_pos, preferred_element_type=jnp.float32)
        else:  # one encoding shared by every row
            bd = jnp.einsum("bind,jnd->bnij", q_pos, k_pos[0], preferred_element_type=jnp.float32)
        scores = ac + rel_shift(bd, k.shape[1])
        if seg is not None:
            ef = jnp.einsum("bind,snd->bnis", q + self.segment_bias.astype(cdt), self.segment_embed.astype(cdt),
                            preferred_element_type=jnp.float32)
            scores = scores + jnp.where(seg[:, None], ef[..., 1:2], ef[..., 0:1])
        scores = scores / jnp.sqrt(jnp.float32(q.shape[-1]))
        probs = jax.nn.softmax(jnp.where(allowed[:, None], scores, NEG_INF), axis=-1)
        probs = self.prob_dropout(probs, deterministic=self.deterministic)
        return jnp.einsum("bnij,bjnd->bind", probs.astype(v.dtype), v)

    def _post(self, x: jax.Array, context: jax.Array) -> jax.Array:
        out = self.out_dropout(self.out(context), deterministic=self.deterministic)
        return self.norm(x + out)

    def __call__(self, h: jax.Array, g: jax.Array | None, mem: jax.Array, ctx: dict[str, Any]
                 ) -> tuple[jax.Array, jax.Array | None]:
        cat = jnp.concatenate([mem.astype(h.dtype), h], axis=1)
        k, v = self.key(cat), self.value(cat)
        k_pos = self.position(ctx["pos"])
        if k_pos.shape[0] == 2:  # bi_data: the first half of the batch reads forward, the rest backward
            k_pos = jnp.repeat(k_pos, h.shape[0] // 2, axis=0)
        q = nn.with_logical_constraint(self.query(h), ("act_batch", "act_length", "act_heads", None))
        h_out = self._post(h, self._scores_to_context(q, k, v, k_pos, ctx["seg"], ctx["content_mask"]))
        if g is None:
            return h_out, None
        mapping = ctx["target_mapping"].astype(g.dtype)
        q_g = jnp.einsum("bmnd,bml->blnd", self.query(g), mapping)  # each slot's query at its position
        context = self._scores_to_context(q_g, k, v, k_pos, ctx["seg"], ctx["query_mask"])
        return h_out, self._post(g, jnp.einsum("blnd,bml->bmnd", context, mapping))


class XLNetLayer(nn.Module):
    """Relative attention then the FFN (with XLNet's inner dropout), on both streams with shared weights."""

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, carry: tuple[jax.Array, jax.Array | None], mem: jax.Array, ctx: dict[str, Any]):
        h, g = carry
        h = nn.with_logical_constraint(h, ("act_batch", "act_length", "act_hidden"))
        h_out, g_out = RelativeAttention(self.config, self.deterministic, name="attention")(h, g, mem, ctx)
        ffn = FeedForward(self.config, self.deterministic, inner_dropout=True, name="ffn")
        g_out = ffn(g_out) if g_out is not None else None
        return (ffn(h_out), g_out), h  # the layer's input: memory for the next segment, a hidden state


class XLNetEncoder(nn.Module):
    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, h: jax.Array, g: jax.Array | None, mems: jax.Array, ctx: dict[str, Any]):
        """-> ((h, g) after the last layer, every layer's input h [L, B, T, H])."""
        cfg = self.config
        layer_cls = remat_layer(XLNetLayer, cfg)
        if cfg.scan_layers:
            scanned = scan_layer(layer_cls, cfg, (0, nn.broadcast))
            return scanned(cfg, self.deterministic, name="layers")((h, g), mems, ctx)
        inputs = []
        for i in range(cfg.num_layers):
            (h, g), h_in = layer_cls(cfg, self.deterministic, name=f"layers_{i}")((h, g), mems[i], ctx)
            inputs.append(h_in)
        return (h, g), jnp.stack(inputs)


class XLNetEmbeddings(nn.Module):
    """The word table (tied to the LM decoder) and the query stream's learned start vector."""

    config: ModelConfig

    def setup(self) -> None:
        cfg = self.config
        pdt = dtype_of(cfg.param_dtype)
        self.word = nn.Embed(cfg.vocab_size, cfg.hidden_size, param_dtype=pdt,
                             embedding_init=kernel_init(cfg, ("vocab", "embed")))
        self.mask_emb = self.param("mask_emb", kernel_init(cfg, (None, None, "embed")), (1, 1, cfg.hidden_size), pdt)

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        return self.word(input_ids).astype(dtype_of(self.config.compute_dtype))

    def attend(self, x: jax.Array) -> jax.Array:
        return jnp.einsum("...e,ve->...v", x, self.word.embedding.astype(x.dtype))


class XLNetLMHead(nn.Module):
    """XLNetLMHeadModel's lm_loss: logits against the tied word table plus a bias (no transform)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, attend) -> jax.Array:
        bias = self.param("bias", zeros_init(("vocab",)), (self.config.vocab_size,), dtype_of(self.config.param_dtype))
        return attend(x).astype(jnp.float32) + bias.astype(jnp.float32)


class XLNetModel(nn.Module):
    """The whole XLNet: same call as EncoderModel, plus `perm_mask` [B, T, T], `target_mapping` [B, P, T],
    `mems` [L, B, M, H] (a previous output's) and `use_mems` (return the new memory)."""

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
        heads: tuple[str, ...] | None = None,
        perm_mask: jax.Array | None = None,
        target_mapping: jax.Array | None = None,
        mems: jax.Array | None = None,
        use_mems: bool = False,
    ) -> XLNetOutput:
        cfg = self.config
        cdt = dtype_of(cfg.compute_dtype)
        input_ids = jnp.asarray(input_ids, jnp.int32)
        b, t = input_ids.shape
        real = jnp.ones((b, t), bool) if attention_mask is None else jnp.asarray(attention_mask) > 0
        if mems is None:
            mems = jnp.zeros((cfg.num_layers, b, 0, cfg.hidden_size), cdt)
        mlen = mems.shape[2]
        drop = nn.Dropout(cfg.hidden_dropout)

        embeddings = XLNetEmbeddings(cfg, name="embeddings")
        h = drop(embeddings(input_ids), deterministic=deterministic)
        g = None
        if target_mapping is not None:
            start = jnp.broadcast_to(embeddings.mask_emb.astype(cdt), (b, target_mapping.shape[1], cfg.hidden_size))
            g = drop(start, deterministic=deterministic)
        if cfg.bi_data and b % 2:
            raise ValueError(f"bi_data splits the batch into forward and backward halves; got an odd batch of {b}")
        pos = sinusoid(relative_positions(t, mlen + t, cfg.bi_data, cfg.clamp_len), cfg.hidden_size)
        content_mask, query_mask = attention_masks(real, perm_mask, mlen)
        ctx = {"pos": drop(pos, deterministic=deterministic).astype(cdt), "seg": segment_differs(token_type_ids, mlen),
               "content_mask": content_mask, "query_mask": query_mask, "target_mapping": target_mapping}
        (h, g), inputs = XLNetEncoder(cfg, deterministic, name="encoder")(h, g, mems, ctx)

        last = drop(h, deterministic=deterministic)
        query = drop(g, deterministic=deterministic) if g is not None else None
        hidden_states = (*(inputs[i] for i in range(cfg.num_layers)), h) if output_hidden_states else None
        new_mems = None
        if use_mems:
            kept = jnp.concatenate([mems.astype(inputs.dtype), inputs], axis=2)
            new_mems = jax.lax.stop_gradient(kept[:, :, -cfg.mem_len:] if cfg.mem_len else kept)

        wanted = cfg.heads if heads is None else heads
        logits: dict[str, jax.Array] = {}
        if "lm" in wanted:
            logits["lm"] = XLNetLMHead(cfg, name="lm_head")(query if query is not None else last, embeddings.attend)
        if cfg.task == "classification":
            logits["classification"] = ClassificationHead(cfg, deterministic, name="task_head")(last, None, real)
        elif cfg.task == "span":
            logits["span"] = SpanHead(cfg, deterministic, name="task_head")(last)
        elif cfg.task == "token":
            logits["token"] = TokenHead(cfg, deterministic, name="task_head")(last)
        return XLNetOutput(last, None, hidden_states, logits, new_mems, query)
