"""Tensor layout conversion between one of our modules and one Hugging Face module (see hf_names kinds).

Ours: Flax kernels [in, out] with attention split into [H, heads, head_dim] / [heads, head_dim, H].
Theirs: torch Linear weights [out, in] with heads flattened.
"""

from __future__ import annotations

import numpy as np

Shape = tuple[int, ...]

# Our leaf names of each module kind, paired with the HF tensor suffix ("" = the module key itself).
LEAVES: dict[str, tuple[tuple[str, str], ...]] = {
    "embedding": (("embedding", "weight"),),
    "layernorm": (("scale", "weight"), ("bias", "bias")),
    "linear": (("kernel", "weight"), ("bias", "bias")),
    "qkv": (("kernel", "weight"), ("bias", "bias")),
    "attn_out": (("kernel", "weight"), ("bias", "bias")),
    "vector": (("", ""),),
    "param": (("kernel", ""),),
    "head_out": (("kernel", ""),),
}


def hf_key(module: str, suffix: str) -> str:
    return f"{module}.{suffix}" if suffix else module


def hf_shape(kind: str, leaf: str, ours: Shape) -> Shape:
    """The HF tensor shape that holds our leaf of shape `ours`."""
    if leaf != "kernel":
        if kind == "qkv":  # bias [heads, head_dim] -> [heads*head_dim]
            return (int(np.prod(ours)),)
        return tuple(ours)
    if kind == "linear":
        return (ours[1], ours[0])
    if kind == "qkv":  # [H, heads, head_dim] -> [heads*head_dim, H]
        return (ours[1] * ours[2], ours[0])
    if kind == "attn_out":  # [heads, head_dim, H] -> [H, heads*head_dim]
        return (ours[2], ours[0] * ours[1])
    if kind == "param":  # a bare nn.Parameter in our layout (XLNet's q, k, v, r [H, heads, head_dim])
        return tuple(ours)
    if kind == "head_out":  # [heads, head_dim, H] <- XLNet's o [H, heads, head_dim]
        return (ours[2], ours[0], ours[1])
    raise ValueError(f"unknown module kind {kind!r}")


def to_ours(kind: str, leaf: str, tensor: np.ndarray, ours: Shape) -> np.ndarray:
    """An HF tensor (already shape-checked against hf_shape) in our layout."""
    if leaf == "kernel" and kind == "param":
        return np.ascontiguousarray(tensor)
    if leaf == "kernel" and kind == "head_out":
        return np.ascontiguousarray(tensor.transpose(1, 2, 0))
    if leaf == "kernel":
        return np.ascontiguousarray(tensor.T.reshape(ours))
    return tensor.reshape(ours)


def to_hf(kind: str, leaf: str, array: np.ndarray) -> np.ndarray:
    """Our leaf in the HF layout."""
    if leaf != "kernel":
        return np.ascontiguousarray(array.reshape(-1)) if kind == "qkv" else np.ascontiguousarray(array)
    if kind == "param":
        return np.ascontiguousarray(array)
    if kind == "head_out":
        return np.ascontiguousarray(array.transpose(2, 0, 1))
    if kind == "qkv":
        return np.ascontiguousarray(array.reshape(array.shape[0], -1).T)
    if kind == "attn_out":
        return np.ascontiguousarray(array.reshape(-1, array.shape[-1]).T)
    return np.ascontiguousarray(array.T)
