"""Logical-axis rules (t5x style) and the shardings they give params, optimizer state and batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# The one table: logical name -> mesh axis (or axes). Earlier rules win when two dims of one
# array would claim the same mesh axis; the later dim is then left unsharded.
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    # params
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("hidden_out", "tensor"),
    ("embed", "fsdp"),
    ("hidden", "fsdp"),
    ("kv", None),
    ("layers", None),
    # activations
    ("act_batch", ("data", "fsdp")),
    ("act_length", None),
    ("act_hidden", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
)

PyTree = Any


def _axis_size(mesh: Mesh, axes: Any) -> int:
    if axes is None:
        return 1
    names = axes if isinstance(axes, tuple) else (axes,)
    return int(np.prod([mesh.shape[n] for n in names]))


def fit_spec(spec: PartitionSpec, shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
    """`spec` with every dim that its mesh axes do not divide left unsharded (e.g. vocab 30522 over 4)."""
    dims = list(spec) + [None] * (len(shape) - len(spec))
    return PartitionSpec(*(axes if size % _axis_size(mesh, axes) == 0 else None
                           for axes, size in zip(dims, shape, strict=True)))


def logical_to_sharding(logical: PartitionSpec | tuple | None, shape: tuple[int, ...], mesh: Mesh,
                        rules: tuple = LOGICAL_RULES) -> NamedSharding:
    """The NamedSharding of one array from its logical axis names."""
    mesh_spec = nn.logical_to_mesh_axes(tuple(logical) if logical is not None else (None,) * len(shape), rules)
    return NamedSharding(mesh, fit_spec(mesh_spec, tuple(shape), mesh))


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec) or x is None


def tree_shardings(abstract: PyTree, logical: PyTree, mesh: Mesh, rules: tuple = LOGICAL_RULES) -> PyTree:
    """NamedShardings for a tree of arrays (or ShapeDtypeStructs) and its matching tree of logical specs."""
    specs = jax.tree_util.tree_leaves(logical, is_leaf=_is_spec)
    leaves, treedef = jax.tree_util.tree_flatten(abstract)
    if len(specs) != len(leaves):
        raise ValueError(f"logical axes tree has {len(specs)} leaves but the param tree has {len(leaves)}")
    return treedef.unflatten([logical_to_sharding(s, tuple(x.shape), mesh, rules)
                              for s, x in zip(specs, leaves, strict=True)])


def like_params_shardings(tree: PyTree, params: PyTree, param_shardings: PyTree, mesh: Mesh) -> PyTree:
    """Shardings for a tree that embeds copies of the param tree (optimizer moments, accumulators).

    Every subtree with exactly the params' structure gets the params' shardings; any other leaf
    (step counters, scalars) is replicated.
    """
    params_def = jax.tree_util.tree_structure(params)
    sharding_leaves = jax.tree_util.tree_leaves(param_shardings)
    replicated = NamedSharding(mesh, PartitionSpec())

    def matches(x: Any) -> bool:
        return isinstance(x, Mapping) and jax.tree_util.tree_structure(x) == params_def

    def assign(x: Any) -> Any:
        if matches(x):
            return params_def.unflatten(sharding_leaves)
        return replicated

    return jax.tree_util.tree_map(assign, tree, is_leaf=matches)


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Batch arrays: the leading dim over ("data", "fsdp"), the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def put_global(tree: PyTree, shardings: PyTree) -> PyTree:
    """Place values every process holds alike (a loaded checkpoint, a teacher, an rng key) onto `shardings`.

    `jax.device_put` cannot reach other processes' devices, so with several processes each one fills
    its own shards from its copy.
    """
    def put(x: Any, sharding: jax.sharding.Sharding) -> jax.Array:
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree_util.tree_map(lambda x: put(x, shardings), tree)
    return jax.tree_util.tree_map(put, tree, shardings)


def host_to_global(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global batch arrays from this process's slice (each process passes its own rows)."""
    return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), np.asarray(v))
            for k, v in batch.items()}


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules: tuple = LOGICAL_RULES) -> Iterator[None]:
    """Trace under this so the model's nn.with_logical_constraint calls map onto `mesh`."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield


def bytes_per_device(tree: PyTree) -> dict[int, int]:
    """How many bytes of `tree`'s arrays each device holds (from the arrays' actual shards)."""
    out: dict[int, int] = {}
    for leaf in jax.tree_util.tree_leaves(tree):
        for shard in leaf.addressable_shards:
            out[shard.device.id] = out.get(shard.device.id, 0) + shard.data.nbytes
    return out
