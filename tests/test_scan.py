"""nn.scan over layers vs the unrolled loop: same params (exact layout round trip), outputs and gradients.

Covers every ALBERT sharing mode and every remat policy; dropout is off so both layouts compute
the same function.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.config import PRESETS, REMAT_POLICIES, SHARING_MODES, ModelConfig
from jaxbert.model import EncoderModel, count_params, param_shapes, scan_to_unrolled, unrolled_to_scan

TINY = dict(vocab_size=101, hidden_size=24, num_heads=2, intermediate_size=40, embedding_size=16, num_layers=2,
            max_position_embeddings=16)


def _config(sharing: str, remat: str = "none", scan: bool = True) -> ModelConfig:
    return PRESETS["albert-base"].replace(**TINY, sharing=sharing, remat=remat, scan_layers=scan)


def _batch() -> dict[str, jnp.ndarray]:
    rng = np.random.RandomState(0)
    ids = rng.randint(1, TINY["vocab_size"], (2, 7))
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": (np.arange(7) >= 3) * mask,
            "masked_positions": np.array([[1, 5], [0, 2]])}


# Both layouts compile with the same options; level 0 halves XLA's CPU compile time of these graphs.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@functools.cache
def _run(config: ModelConfig):
    """One compile per config: (every output, gradients of a loss that touches every parameter)."""

    def loss(params, batch):
        out = EncoderModel(config).apply({"params": params}, batch["input_ids"], batch["attention_mask"],
                                         batch["token_type_ids"], output_hidden_states=True,
                                         masked_positions=batch["masked_positions"])
        total = out.logits["mlm"].sum() + out.logits["sop"].sum() + jnp.square(out.last_hidden_state).sum()
        return total, out

    step = jax.jit(jax.value_and_grad(loss, has_aux=True))
    return step.lower(param_shapes(config), _batch()).compile(compiler_options=FAST_COMPILE)


def _outputs(config: ModelConfig, params):
    (_, out), grads = _run(config)(params, _batch())
    flat = {"last": out.last_hidden_state, "pooler": out.pooler_output, **out.logits}
    flat.update({f"hidden_{i}": h for i, h in enumerate(out.hidden_states)})
    return flat, grads


def _random_params(config: ModelConfig, seed: int):
    rng = np.random.RandomState(seed)
    return jax.tree_util.tree_map(lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32), param_shapes(config))


def _assert_trees_close(a, b) -> None:
    """Equal up to float32 reassociation: 1e-5 of each array's own scale."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-5 * max(1.0, float(np.abs(y).max())))


@pytest.fixture(scope="module", params=SHARING_MODES)
def sharing(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def scan_params(sharing: str):
    return _random_params(_config(sharing), 0)


def test_layout_round_trip_is_exact(sharing: str, scan_params) -> None:
    config = _config(sharing)
    unrolled = scan_to_unrolled(scan_params, config)
    want = jax.tree_util.tree_map(lambda s: s.shape, param_shapes(config.replace(scan_layers=False)))
    assert jax.tree_util.tree_map(np.shape, unrolled) == want
    back = unrolled_to_scan(unrolled, config)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(scan_params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, scan_params)


def test_scan_and_unrolled_agree(sharing: str, scan_params) -> None:
    config = _config(sharing)
    unrolled = scan_to_unrolled(scan_params, config)
    out_scan, grads_scan = _outputs(config, scan_params)
    out_loop, grads_loop = _outputs(config.replace(scan_layers=False), unrolled)
    assert len([k for k in out_scan if k.startswith("hidden_")]) == config.num_layers + 1
    _assert_trees_close(out_scan, out_loop)
    _assert_trees_close(grads_scan, unrolled_to_scan(grads_loop, config))


@pytest.mark.parametrize("remat, scan", [(r, True) for r in REMAT_POLICIES if r != "none"] + [("full", False)])
def test_remat_changes_nothing_but_memory(remat: str, scan: bool) -> None:
    base = _config("attention", scan=scan)
    params = _random_params(_config("attention"), 0)
    if not scan:
        params = scan_to_unrolled(params, base)
    out_ref, grads_ref = _outputs(base, params)
    out, grads = _outputs(base.replace(remat=remat), params)
    _assert_trees_close(out, out_ref)
    _assert_trees_close(grads, grads_ref)


@pytest.mark.parametrize("scan", [True, False])
def test_albert_all_shared_holds_one_layer_whatever_the_depth(scan: bool) -> None:
    counts = {depth: count_params(param_shapes(_config("all", scan=scan).replace(num_layers=depth)))
              for depth in (1, 4, 12)}
    assert len(set(counts.values())) == 1, counts
    layer = param_shapes(_config("all", scan=scan))["encoder"]["layers"]
    assert layer["ffn"]["intermediate"]["kernel"].shape == (TINY["hidden_size"], TINY["intermediate_size"])
