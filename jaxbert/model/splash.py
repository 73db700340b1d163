"""Pallas splash attention (TPU flash attention, forward and backward) with padding as segment ids.

Token i attends to token j iff both carry the same segment id. Padding is segment 0 and real tokens
of an unpacked row segment 1, so real rows attend exactly as the XLA kernel's key mask makes them;
packed rows (several sequences in one row) give each sequence its own id and attend only within it.
Padded positions attend to each other: their outputs, which no loss reads, differ from the XLA
kernel's (there they attend to the real tokens).

The kernel runs per shard inside `shard_map` (batch over the mesh's data axes, heads over "tensor",
as the logical rules in scope say): a custom call is opaque to the compiler's partitioner, which would
otherwise gather whole activations onto every chip. Without a TPU (CPU tests) it runs in Pallas
interpret mode. Sequence lengths must be multiples of 128: the kernel tiles the sequence into
blocks of 128 lanes (the largest of 512, 256, 128 dividing the length is used).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from jaxbert.config import ConfigError

LANES = 128
BLOCKS = (512, 256, 128)


def block_size(seq_len: int) -> int:
    """The splash tile for `seq_len`; a one-line ConfigError when no tile divides it."""
    if seq_len % LANES:
        raise ConfigError(f"ModelConfig.attention_kernel: 'splash' needs the sequence length to be a multiple of "
                          f"{LANES}, got {seq_len}; set train.seq_len to a multiple of {LANES} or use "
                          "attention_kernel='xla'")
    return next(b for b in BLOCKS if seq_len % b == 0)


def _target_platform() -> str:
    """The platform being compiled for: the mesh in scope's devices (compile-only TPU devices on a CPU
    host lower for TPU), else the default backend."""
    device = getattr(jax.sharding.get_abstract_mesh(), "abstract_device", None)
    return getattr(device, "platform", None) or jax.default_backend()


def _fit(spec: PartitionSpec, shape: tuple[int, ...], mesh: jax.sharding.AbstractMesh) -> PartitionSpec:
    """`spec` with the dims its mesh axes do not divide left whole (e.g. 12 heads over tensor=8)."""
    def size(axes) -> int:
        names = () if axes is None else (axes if isinstance(axes, tuple) else (axes,))
        return math.prod(mesh.shape[n] for n in names)

    dims = list(spec) + [None] * (len(shape) - len(spec))
    return PartitionSpec(*(a if n % size(a) == 0 else None for a, n in zip(dims, shape, strict=True)))


def _local_splash(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, interpret: bool) -> jax.Array:
    """Splash attention on one shard: q, k, v [B, T, N, D], segment_ids [B, T] -> [B, T, N, D]."""
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    _, t, n, d = q.shape
    b = block_size(t)
    sizes = splash.BlockSizes(block_q=b, block_kv=b, block_kv_compute=b, block_q_dkv=b, block_kv_dkv=b,
                              block_kv_dkv_compute=b, block_q_dq=b, block_kv_dq=b)
    mask = splash.MultiHeadMask([splash.FullMask((t, t))] * n)
    kernel = splash.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret)
    heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # [B, N, T, D], as the kernel reads them
    scaled = q * jnp.asarray(1.0 / math.sqrt(d), q.dtype)  # the kernel applies no 1/sqrt(d) itself
    ids = segment_ids.astype(jnp.int32)
    out = jax.vmap(lambda q1, k1, v1, s1: kernel(q1, k1, v1, splash.SegmentIds(s1, s1)))(
        heads_first(scaled), heads_first(k), heads_first(v), ids)
    return heads_first(out).astype(v.dtype)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array,
                     interpret: bool | None = None) -> jax.Array:
    """softmax(q k^T / sqrt(d)) v where segment ids match; q, k, v [B, T, N, D], segment_ids [B, T] int.

    No attention-probability dropout (as with the other fused kernels).
    """
    block_size(q.shape[1])
    if interpret is None:
        interpret = _target_platform() != "tpu"
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return _local_splash(q, k, v, segment_ids, interpret)
    spec = _fit(nn.logical_to_mesh_axes(("act_batch", None, "act_heads", None)), q.shape, mesh)
    ids_spec = PartitionSpec(spec[0], None)
    local = lambda *args: _local_splash(*args, interpret=interpret)
    return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec, ids_spec), out_specs=spec,
                         check_vma=False)(q, k, v, segment_ids)
