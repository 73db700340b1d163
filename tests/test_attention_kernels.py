"""The attention kernels agree: plain XLA vs jax.nn.dot_product_attention, forward and gradients, with padding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbert
from jaxbert.model import EncoderModel, init_params

CFG = jaxbert.ModelConfig(vocab_size=97, hidden_size=48, num_heads=3, intermediate_size=64, num_layers=2,
                          max_position_embeddings=32, heads=("mlm",), pooler=False)


def _run(config, params, ids, mask):
    def loss(p):
        out = EncoderModel(config).apply({"params": p}, ids, mask)
        return jnp.sum(out.logits["mlm"] * mask[..., None]), out

    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return out, grads


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["dot_product"])
def test_fused_kernel_matches_xla_in_float32(kernel):
    rng = np.random.default_rng(0)
    ids = jnp.asarray(rng.integers(1, 97, (3, 16)), jnp.int32)
    mask = jnp.asarray(np.arange(16)[None] < np.array([[16], [9], [1]]), jnp.int32)  # incl. a 1-token row
    params = init_params(CFG, 0)
    ref, ref_g = _run(CFG, params, ids, mask)
    out, g = _run(CFG.replace(attention_kernel=kernel), params, ids, mask)
    real = np.asarray(mask, bool)
    np.testing.assert_allclose(np.asarray(out.last_hidden_state)[real], np.asarray(ref.last_hidden_state)[real],
                               atol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(ref_g), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4, rtol=1e-4)


@pytest.mark.slow
def test_bfloat16_compute_stays_close_to_float32():
    rng = np.random.default_rng(1)
    ids = jnp.asarray(rng.integers(1, 97, (2, 16)), jnp.int32)
    mask = jnp.ones_like(ids)
    params = init_params(CFG, 0)
    ref, _ = _run(CFG, params, ids, mask)
    out, _ = _run(CFG.replace(compute_dtype="bfloat16"), params, ids, mask)
    assert out.last_hidden_state.dtype == jnp.bfloat16
    assert out.logits["mlm"].dtype == jnp.float32  # logits and losses stay float32
    diff = np.abs(np.asarray(out.last_hidden_state, np.float32) - np.asarray(ref.last_hidden_state))
    assert diff.max() < 0.1 and diff.mean() < 0.02  # bf16 has ~3 significant digits; LayerNorm outputs are O(1)
