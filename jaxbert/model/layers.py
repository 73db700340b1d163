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


def dense(config: ModelConfig, features: int | tuple[int, ...], kernel_axes: Sequence[str | None],
          axis: int | tuple[int, ...] = -1, name: str | None = None) -> nn.DenseGeneral:
    """A DenseGeneral in the config's compute/param dtypes with logically named kernel and bias."""
    feats = features if isinstance(features, tuple) else (features,)
    n_out = len(feats)
    return nn.DenseGeneral(
        features=features,
        axis=axis,
        dtype=dtype_of(config.compute_dtype),
        param_dtype=dtype_of(config.param_dtype),
        kernel_init=kernel_init(config, kernel_axes),
        bias_init=zeros_init(tuple(kernel_axes)[-n_out:]),
        name=name,
    )


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
