"""Parameter helpers: init, counting, logical partition specs, scan <-> unrolled layout converters."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.model.build import build_model

Params = Any


def dummy_inputs(config: ModelConfig, batch: int = 1, length: int = 8) -> dict[str, jax.Array]:
    ids = jnp.zeros((batch, length), jnp.int32)
    return {"input_ids": ids, "attention_mask": jnp.ones_like(ids), "token_type_ids": jnp.zeros_like(ids)}


def init_boxed(config: ModelConfig, rng: jax.Array) -> Params:
    """Params with their nn.Partitioned logical-axis boxes (what sharded init needs)."""
    length = min(8, config.max_position_embeddings - config.position_offset - 1)
    batch = 2 if config.bi_data else 1  # XLNet's bi_data halves the batch into forward and backward rows
    # The attention kernel owns no params; splash could not trace this short dummy input.
    model = build_model(config.replace(attention_kernel="xla"))
    return model.init(rng, **dummy_inputs(config, batch, length))["params"]


def init_params(config: ModelConfig, rng: jax.Array | int = 0) -> Params:
    """Freshly initialised params (plain arrays) for a config."""
    if isinstance(rng, int):
        rng = jax.random.key(rng)
    return nn.unbox(init_boxed(config, rng))


def logical_axes(config: ModelConfig) -> Params:
    """The tree of logical PartitionSpecs matching init_params(config), computed without allocating."""
    boxed = jax.eval_shape(lambda: init_boxed(config, jax.random.key(0)))
    return nn.get_partition_spec(boxed)


def param_shapes(config: ModelConfig) -> Params:
    return nn.unbox(jax.eval_shape(lambda: init_boxed(config, jax.random.key(0))))


def count_params(tree: Params) -> int:
    """Total number of scalars in a param tree (arrays or ShapeDtypeStructs)."""
    return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree_util.tree_leaves(tree)))


def scan_to_unrolled(params: Params, config: ModelConfig) -> Params:
    """Stacked encoder/layers/... [L, ...] → encoder/layers_0 ... layers_{L-1} (for scan_layers=False)."""
    if config.sharing == "all":
        return params
    enc = dict(params["encoder"])
    stacked = enc.pop("layers")
    for i in range(config.num_layers):
        enc[f"layers_{i}"] = jax.tree_util.tree_map(lambda x, i=i: x[i], stacked)
    return {**params, "encoder": enc}


def unrolled_to_scan(params: Params, config: ModelConfig) -> Params:
    """Inverse of scan_to_unrolled."""
    if config.sharing == "all":
        return params
    enc = dict(params["encoder"])
    layers = [enc.pop(f"layers_{i}") for i in range(config.num_layers)]
    enc["layers"] = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers)
    return {**params, "encoder": enc}


def _flat(tree: Params) -> dict[str, Any]:
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_params(config: ModelConfig, params: Params, source: str = "checkpoint") -> None:
    """Raise a one-line JaxbertError naming the first key whose presence or shape differs from the config's."""
    from jaxbert.errors import JaxbertError

    want, got = _flat(param_shapes(config)), _flat(params)
    for key in sorted(set(want) | set(got)):
        if key not in got:
            raise JaxbertError(f"{source}: parameter {key} is missing (expected shape {tuple(want[key].shape)}); "
                               "the checkpoint does not match its config")
        if key not in want:
            raise JaxbertError(f"{source}: unexpected parameter {key} with shape {tuple(np.shape(got[key]))}; "
                               "the checkpoint does not match its config")
        if tuple(want[key].shape) != tuple(np.shape(got[key])):
            raise JaxbertError(f"{source}: parameter {key} has shape {tuple(np.shape(got[key]))} but the config "
                               f"expects {tuple(want[key].shape)}; fix the config or use the matching checkpoint")
