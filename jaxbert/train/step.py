"""The jitted train and eval steps, built from any Objective and optimizer.

Gradient accumulation is a `lax.scan` over micro-batches inside one step rather than
optax.MultiSteps: one dispatch and one optimizer update per global batch, no persistent
accumulator in the optimizer state, and `state.step` always counts optimizer updates (so the
schedule, checkpoints and the (seed, step) rng mean the same thing with and without it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxbert.train.objective import Objective
from jaxbert.train.state import TrainState

PyTree = Any
Batch = Mapping[str, jax.Array]


def split_micro_batches(batch: Batch, accum: int) -> dict[str, jax.Array]:
    """[B, ...] → [accum, B/accum, ...] so that every micro-batch spans all data-parallel shards.

    Rows are dealt round-robin (row r goes to micro-batch r % accum): each device's contiguous
    block of rows then contributes to every micro-batch, so no micro-batch sits on few devices.
    """

    def split(x: jax.Array) -> jax.Array:
        y = x.reshape(x.shape[0] // accum, accum, *x.shape[1:]).swapaxes(0, 1)
        return nn.with_logical_constraint(y, (None, "act_batch", *([None] * (x.ndim - 1))))

    return {k: split(v) for k, v in batch.items()}


def _tree_where(pred: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda n, o: jnp.where(pred, n, o), new, old)


def make_train_step(objective: Objective, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    grad_accum: int = 1) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """`step(state, frozen, batch, base_key) -> (state, metrics)`.

    The step's rng is `fold_in(base_key, state.step)`, so a resumed run draws the same masks and
    dropout as an uninterrupted one. A non-finite loss or gradient leaves params and optimizer
    state unchanged (metrics["finite"] = 0); the loop decides whether to stop or go on.
    """

    def grad_fn(params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array):
        return jax.value_and_grad(lambda p: objective.loss(p, frozen, batch, rng, deterministic=False),
                                  has_aux=True)(params)

    def step(state: TrainState, frozen: PyTree, batch: Batch, base_key: jax.Array):
        rng = jax.random.fold_in(base_key, state.step)
        if grad_accum == 1:
            (loss, metrics), grads = grad_fn(state.params, frozen, batch, rng)
        else:
            micro = split_micro_batches(batch, grad_accum)

            def body(carry, xs):
                index, mb = xs
                (micro_loss, m), g = grad_fn(state.params, frozen, mb, jax.random.fold_in(rng, index))
                acc_g, acc_l, acc_m = carry
                add = lambda a, b: jax.tree_util.tree_map(jnp.add, a, b)
                return (add(acc_g, g), acc_l + micro_loss, add(acc_m, m)), None

            first = jax.tree_util.tree_map(lambda x: x[0], micro)
            shapes = jax.eval_shape(grad_fn, state.params, frozen, first, rng)
            (_, metric_shapes), grad_shapes = shapes
            zeros = lambda t: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), t)
            init = (zeros(grad_shapes), jnp.zeros((), jnp.float32), zeros(metric_shapes))
            (grads, loss, metrics), _ = jax.lax.scan(body, init, (jnp.arange(grad_accum), micro))
            scale = lambda t: jax.tree_util.tree_map(lambda x: x / grad_accum, t)
            grads, loss, metrics = scale(grads), loss / grad_accum, scale(metrics)

        grad_norm = optax.global_norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(step=state.step + 1,
                               params=_tree_where(finite, params, state.params),
                               opt_state=_tree_where(finite, opt_state, state.opt_state))
        metrics = dict(metrics)
        metrics.update(loss=loss, grad_norm=grad_norm, learning_rate=jnp.asarray(schedule(state.step), jnp.float32),
                       finite=finite.astype(jnp.float32))
        return new_state, metrics

    return step


def make_eval_step(objective: Objective) -> Callable[..., dict[str, jax.Array]]:
    """`eval_step(params, frozen, batch, key) -> metrics` with dropout off and a fixed masking key."""

    def eval_step(params: PyTree, frozen: PyTree, batch: Batch, key: jax.Array) -> dict[str, jax.Array]:
        _, metrics = objective.loss(params, frozen, batch, key, deterministic=True)
        return metrics

    return eval_step
