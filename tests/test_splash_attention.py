"""Pallas splash attention (interpret mode on CPU) against the XLA kernel: outputs and gradients, padded,
unpadded and packed rows, float32 and bfloat16; the one-line error for lengths splash cannot tile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.config import ConfigError, ModelConfig
from jaxbert.model import EncoderModel, init_params
from jaxbert.model.attention import xla_attention
from jaxbert.model.splash import splash_attention

B, T, N, D = 2, 128, 2, 64


def qkv(dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(0), 4)
    q, k, v = (jax.random.normal(key, (B, T, N, D), jnp.float32) for key in keys[:3])
    weights = jax.random.normal(keys[3], (B, T, N, D), jnp.float32)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), weights


# Row 0 has no padding; row 1 has 37 padded positions at the end.
MASK = jnp.ones((B, T), bool).at[1, 91:].set(False)


def xla(q, k, v, mask=MASK, segment_ids=None):
    return xla_attention(q, k, v, mask, 0.0, True, None, segment_ids)


def splash(q, k, v, mask=MASK, segment_ids=None):
    return splash_attention(q, k, v, mask.astype(jnp.int32) if segment_ids is None else segment_ids, interpret=True)


def outputs_and_grads(kernel, q, k, v, weights, real):
    """The kernel's output and d(loss)/d(q, k, v) for a loss over the real (unpadded) positions."""

    def loss(q, k, v):
        out = kernel(q, k, v).astype(jnp.float32)
        return jnp.sum(jnp.where(real[:, :, None, None], out * weights, 0.0))

    out = jax.jit(kernel)(q, k, v)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    return out, grads


def max_diff(a, b, where=None):
    d = jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32))
    return float(jnp.max(d if where is None else jnp.where(where[:, :, None, None], d, 0.0)))


def test_float32_outputs_and_grads_match_xla_on_padded_and_unpadded_rows():
    q, k, v, w = qkv()
    out_x, grads_x = outputs_and_grads(xla, q, k, v, w, MASK)
    out_s, grads_s = outputs_and_grads(splash, q, k, v, w, MASK)
    assert max_diff(out_x[:1], out_s[:1]) <= 1e-5  # the unpadded row, every position
    assert max_diff(out_x, out_s, MASK) <= 1e-5  # the padded row's real positions
    for gx, gs in zip(grads_x, grads_s, strict=True):
        assert max_diff(gx, gs) <= 1e-5
    # The padded keys get no gradient from real queries under either kernel.
    assert float(jnp.abs(grads_s[1][1, 91:]).max()) == 0.0 and float(jnp.abs(grads_x[1][1, 91:]).max()) == 0.0


def test_bfloat16_error_is_within_the_xla_kernels_own_bfloat16_error():
    q32, k32, v32, w = qkv()
    q, k, v = (x.astype(jnp.bfloat16) for x in (q32, k32, v32))
    ref_out, ref_grads = outputs_and_grads(xla, q32, k32, v32, w, MASK)  # float32 reference
    xla_out, xla_grads = outputs_and_grads(xla, q, k, v, w, MASK)
    spl_out, spl_grads = outputs_and_grads(splash, q, k, v, w, MASK)
    xla_err = max_diff(ref_out, xla_out, MASK)
    assert max_diff(ref_out, spl_out, MASK) <= 1.1 * xla_err
    for ref, gx, gs in zip(ref_grads, xla_grads, spl_grads, strict=True):
        assert max_diff(ref, gs) <= 1.1 * max_diff(ref, gx)


def test_packed_rows_attend_within_their_segment_as_in_the_xla_kernel():
    q, k, v, w = qkv()
    seg = np.zeros((B, T), np.int32)
    seg[0, :50], seg[0, 50:128] = 1, 2  # two sequences packed in row 0
    seg[1, :30], seg[1, 30:100] = 1, 2  # two sequences and padding (0) in row 1
    seg = jnp.asarray(seg)
    real = seg > 0
    out_x, grads_x = outputs_and_grads(lambda q, k, v: xla(q, k, v, segment_ids=seg), q, k, v, w, real)
    out_s, grads_s = outputs_and_grads(lambda q, k, v: splash(q, k, v, segment_ids=seg), q, k, v, w, real)
    assert max_diff(out_x, out_s) <= 1e-5  # padding attends to padding in both: every position agrees
    for gx, gs in zip(grads_x, grads_s, strict=True):
        assert max_diff(gx, gs) <= 1e-5
    # Segment 1 of row 0 does not see segment 2: its output is that of the 50 tokens alone.
    alone = xla(q[:1, :50], k[:1, :50], v[:1, :50], mask=jnp.ones((1, 50), bool))
    assert max_diff(alone, out_s[:1, :50]) <= 1e-5


def test_the_model_with_splash_matches_the_xla_model_on_real_tokens():
    config = ModelConfig(num_layers=1, hidden_size=128, num_heads=2, intermediate_size=256, vocab_size=512,
                         max_position_embeddings=T, heads=())
    params = init_params(config, 0)
    ids = jax.random.randint(jax.random.key(1), (B, T), 5, 512)
    mask = MASK.astype(jnp.int32)
    forward = jax.jit(lambda cfg, p, i, m: EncoderModel(cfg).apply({"params": p}, i, m).last_hidden_state,
                      static_argnums=0)
    xla_out = forward(config, params, ids, mask)
    spl_out = forward(config.replace(attention_kernel="splash"), params, ids, mask)
    diff = jnp.abs(xla_out - spl_out).max(-1)
    assert float(jnp.where(MASK, diff, 0.0).max()) <= 1e-4


def test_a_length_splash_cannot_tile_is_a_one_line_error():
    q = jnp.zeros((1, 100, N, D))
    with pytest.raises(ConfigError, match="multiple of 128, got 100") as info:
        splash_attention(q, q, q, jnp.ones((1, 100), jnp.int32), interpret=True)
    assert "\n" not in str(info.value)
