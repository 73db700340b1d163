"""The encoder stack: nn.scan over layers (one compile whatever the depth) or an unrolled loop.

Parameter sharing (ALBERT): "none" stacks every layer's params on a leading "layers" axis; "all"
broadcasts one layer's params to every step; "attention" / "ffn" share only that block. A shared
block's params live at encoder/shared_<block> and enter each step as a broadcast input.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig
from jaxbert.model.attention import FeedForward, SelfAttention

REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}

BLOCKS = {"attention": SelfAttention, "ffn": FeedForward}


class EncoderLayer(nn.Module):
    """One post-LN Transformer layer; `shared` names the block whose params come in as an argument."""

    config: ModelConfig
    deterministic: bool = True
    return_hidden: bool = False
    shared: str = "none"

    def _block(self, kind: str, shared_params: Any, *args: jax.Array) -> jax.Array:
        module_cls = BLOCKS[kind]
        if self.shared != kind:
            return module_cls(self.config, self.deterministic, name=kind)(*args)
        # The shared block is applied functionally so nn.scan can broadcast its params to every step.
        rngs = {}
        if not self.deterministic:
            rngs["dropout"] = self.make_rng("dropout")
        block = module_cls(self.config, self.deterministic, parent=None)
        return block.apply({"params": shared_params}, *args, rngs=rngs)

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, shared_params: Any = None, segment_ids: jax.Array | None = None):
        x = nn.with_logical_constraint(x, ("act_batch", "act_length", "act_hidden"))
        attention_args = (x, mask) if segment_ids is None else (x, mask, segment_ids)
        x = self._block("attention", shared_params, *attention_args)
        x = self._block("ffn", shared_params, x)
        return x, (x if self.return_hidden else None)


def _init_shared_block(config: ModelConfig, kind: str):
    hidden = jnp.zeros((1, 1, config.hidden_size), jnp.dtype(config.compute_dtype))
    args = (hidden, jnp.ones((1, 1), bool)) if kind == "attention" else (hidden,)

    def init(rng: jax.Array) -> Any:  # with the xla kernel: splash cannot trace a length-1 input, owns no params
        return BLOCKS[kind](config.replace(attention_kernel="xla"), True, parent=None).init(rng, *args)["params"]

    return init


def remat_layer(layer_cls: type[nn.Module], config: ModelConfig) -> type[nn.Module]:
    """`layer_cls` under the config's remat policy (itself when remat is "none")."""
    if config.remat == "none":
        return layer_cls
    return nn.remat(layer_cls, policy=REMAT_POLICIES[config.remat], prevent_cse=not config.scan_layers)


def scan_layer(layer_cls: type[nn.Module], config: ModelConfig, in_axes: tuple, shared: bool = False
               ) -> type[nn.Module]:
    """`layer_cls` applied num_layers times by nn.scan: per-layer params stacked on a leading "layers"
    axis (one set broadcast to every step when `shared`), a fresh dropout rng per layer. `in_axes` says,
    per call argument, nn.broadcast or the axis its per-layer slices stack on."""
    if shared:
        axes = dict(variable_broadcast="params", split_rngs={"params": False, "dropout": True})
    else:
        axes = dict(variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True})
    return nn.scan(layer_cls, in_axes=in_axes, length=config.num_layers,
                   metadata_params={nn.PARTITION_NAME: "layers"}, **axes)


class Encoder(nn.Module):
    config: ModelConfig
    deterministic: bool = True
    output_hidden_states: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, segment_ids: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array | None]:
        """x [B,T,H], mask [B,T] bool -> (last hidden [B,T,H], per-layer outputs [L,B,T,H] or None).

        `segment_ids` [B, T] (packed rows) keeps attention inside each segment."""
        cfg = self.config
        partial = cfg.sharing if cfg.sharing in BLOCKS else "none"
        shared_params = None
        if partial != "none":
            shared_params = self.param(f"shared_{partial}", _init_shared_block(cfg, partial))

        layer_cls = remat_layer(EncoderLayer, cfg)
        make_layer = lambda cls, name: cls(cfg, self.deterministic, self.output_hidden_states, partial,
                                           name=name)

        if cfg.scan_layers:
            scanned = scan_layer(layer_cls, cfg, (nn.broadcast, nn.broadcast, nn.broadcast),
                                 shared=cfg.sharing == "all")
            x, per_layer = make_layer(scanned, "layers")(x, mask, shared_params, segment_ids)
            return x, per_layer

        outputs = []
        shared_layer = make_layer(layer_cls, "layers") if cfg.sharing == "all" else None
        for i in range(cfg.num_layers):
            layer = shared_layer or make_layer(layer_cls, f"layers_{i}")
            x, h = layer(x, mask, shared_params, segment_ids)
            outputs.append(h)
        return x, (jnp.stack(outputs) if self.output_hidden_states else None)
