"""Small building blocks shared by every module: activations, dtypes, initialised Dense / LayerNorm."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}


def dtype_of(name: str) -> jnp.dtype:
    return jnp.dtype(name)


def kernel_init(config: ModelConfig, axes: Sequence[str | None]) -> nn.initializers.Initializer:
    """Truncation-free normal(initializer_range) init, as BERT's reference code, tagged with logical axes."""
    return nn.with_logical_partitioning(nn.initializers.normal(config.initializer_range), tuple(axes))


def zeros_init(axes: Sequence[str | None]) -> nn.initializers.Initializer:
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), tuple(axes))


def ones_init(axes: Sequence[str | None]) -> nn.initializers.Initializer:
    return nn.with_logical_partitioning(nn.initializers.ones_init(), tuple(axes))


class Dense(nn.Module):
    """x · W + b contracting `axis` of x, with W created at its full N-d shape.

    Flax's DenseGeneral initialises a flattened 2-d kernel and tags it with our N-d logical names,
    which fails under a mesh with logical rules; creating the N-d kernel directly avoids that.
    """

    config: ModelConfig
    features: tuple[int, ...]
    kernel_axes: tuple[str | None, ...]
    axis: tuple[int, ...] = (-1,)
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        axis = tuple(a % x.ndim for a in self.axis)
        pdt, cdt = dtype_of(cfg.param_dtype), dtype_of(cfg.compute_dtype)
        in_shape = tuple(x.shape[a] for a in axis)
        kernel = self.param("kernel", kernel_init(cfg, self.kernel_axes), in_shape + self.features, pdt)
        y = jax.lax.dot_general(x.astype(cdt), kernel.astype(cdt), ((axis, tuple(range(len(axis)))), ((), ())))
        if not self.use_bias:
            return y
        bias = self.param("bias", zeros_init(self.kernel_axes[-len(self.features):]), self.features, pdt)
        return y + bias.astype(cdt)


def dense(config: ModelConfig, features: int | tuple[int, ...], kernel_axes: Sequence[str | None],
          axis: int | tuple[int, ...] = -1, name: str | None = None, use_bias: bool = True) -> Dense:
    """A Dense layer in the config's compute/param dtypes with logically named kernel and (unless told not to) bias."""
    feats = features if isinstance(features, tuple) else (features,)
    axes = axis if isinstance(axis, tuple) else (axis,)
    return Dense(config, feats, tuple(kernel_axes), axes, use_bias, name=name)


class LayerNorm(nn.Module):
    """LayerNorm computed in float32 whatever the compute dtype (bf16 statistics drift), cast back after."""

    config: ModelConfig
    axis_name: str = "embed"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width, pdt = x.shape[-1], dtype_of(self.config.param_dtype)
        scale = self.param("scale", ones_init((self.axis_name,)), (width,), pdt)
        bias = self.param("bias", zeros_init((self.axis_name,)), (width,), pdt)
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.config.layer_norm_eps)
        y = y * scale.astype(jnp.float32) + bias.astype(jnp.float32)
        return y.astype(dtype_of(self.config.compute_dtype))
