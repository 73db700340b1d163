"""Optimizers (AdamW, LAMB) with BERT's weight-decay exclusions, warmup + decay schedules, clipping."""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxbert.config import ConfigError
from jaxbert.train.spec import OPTIMIZERS, SCHEDULES, OptimizerSpec

PyTree = Any


def decay_mask(params: PyTree) -> PyTree:
    """True for params that get weight decay: everything but LayerNorm params and biases."""

    def keep(path: tuple, _: Any) -> bool:
        # Our LayerNorms are named "norm"; imported trees may say "LayerNorm" / "layer_norm".
        names = [str(getattr(k, "key", getattr(k, "name", k))).lower() for k in path]
        return names[-1] != "bias" and not any("norm" in n for n in names)

    return jax.tree_util.tree_map_with_path(keep, params)


def make_schedule(opts: OptimizerSpec, steps: int) -> optax.Schedule:
    """Linear warmup from 0 to `lr` over `warmup_steps`, then `schedule` decay to `end_lr` at `steps`.

    schedule: linear (BERT) | polynomial (power `power`) | cosine | constant.
    """
    lr, warmup, end, kind = opts.lr, opts.warmup_steps, opts.end_lr, opts.schedule
    decay_steps = max(steps - warmup, 1)
    if kind == "linear":
        decay = optax.linear_schedule(lr, end, decay_steps)
    elif kind == "polynomial":
        decay = optax.polynomial_schedule(lr, end, opts.power, decay_steps)
    elif kind == "cosine":
        decay = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
    elif kind == "constant":
        decay = optax.constant_schedule(lr)
    else:
        raise ConfigError(f"config.train.schedule: unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
    if warmup <= 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


def make_optimizer(opts: OptimizerSpec, steps: int, trainable: PyTree | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule) for a run of `steps` optimizer updates (see OptimizerSpec);
    `trainable` (a bool tree) freezes the False params."""
    schedule = make_schedule(opts, steps)
    kind = opts.optimizer
    common = dict(b1=opts.b1, b2=opts.b2, eps=opts.eps, weight_decay=opts.weight_decay, mask=decay_mask)
    if kind == "adamw":
        tx = optax.adamw(schedule, **common)
    elif kind == "lamb":
        tx = optax.lamb(schedule, **common)
    else:
        raise ConfigError(f"config.train.optimizer: unknown optimizer {kind!r}; use one of {', '.join(OPTIMIZERS)}")
    clip = opts.clip_norm
    if clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    if trainable is not None:
        labels = jax.tree_util.tree_map(lambda t: "train" if t else "freeze", trainable)
        tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels)
    return tx, schedule
