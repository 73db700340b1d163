"""The train state on a mesh: its shardings, sharded init, and the ahead-of-time compiled steps."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding

from jaxbert.parallel import (
    activation_sharding,
    batch_sharding,
    like_params_shardings,
    put_global,
    replicated,
    tree_shardings,
)
from jaxbert.train.memory import refusal_error
from jaxbert.train.objective import Objective
from jaxbert.train.optim import make_optimizer
from jaxbert.train.spec import OptimizerSpec
from jaxbert.train.state import TrainState
from jaxbert.train.step import make_eval_step, make_train_step

log = logging.getLogger(__name__)
PyTree = Any


@dataclasses.dataclass
class StateLayout:
    """Shapes and shardings of the train state and frozen params on one mesh."""

    mesh: Mesh
    abstract_state: TrainState  # ShapeDtypeStructs with their shardings
    state_shardings: TrainState
    abstract_frozen: PyTree
    frozen_shardings: PyTree


def _with_sharding(abstract: PyTree, shardings: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


def state_layout(objective: Objective, tx: optax.GradientTransformation, mesh: Mesh,
                 frozen: PyTree | None = None) -> StateLayout:
    """Where every array of the train state lives: params by their logical axes, optimizer moments
    like their params, counters replicated."""
    abstract_params = jax.eval_shape(objective.init, jax.random.key(0))
    param_shardings = tree_shardings(abstract_params, objective.param_axes(), mesh)
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    opt_shardings = like_params_shardings(abstract_opt, abstract_params, param_shardings, mesh)
    shardings = TrainState(step=replicated(mesh), params=param_shardings, opt_state=opt_shardings)
    abstract = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_params, opt_state=abstract_opt)
    frozen = {} if frozen is None else frozen
    # Arrays or ShapeDtypeStructs alike: an ahead-of-time compile needs only the frozen params' shapes.
    abstract_frozen = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), frozen)
    frozen_shardings = tree_shardings(abstract_frozen, objective.frozen_axes(), mesh) if frozen else {}
    return StateLayout(mesh, _with_sharding(abstract, shardings), shardings,
                       _with_sharding(abstract_frozen, frozen_shardings), frozen_shardings)


def init_state(objective: Objective, tx: optax.GradientTransformation, layout: StateLayout, rng: jax.Array,
               params: PyTree | None = None) -> TrainState:
    """A fresh TrainState created directly in its shards (params never exist whole on one host).

    `params` (e.g. from a previous phase's checkpoint) replaces the random init when given.
    """

    def create(key: jax.Array, given: PyTree | None) -> TrainState:
        p = objective.init(key) if given is None else given
        return TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p))

    shardings = layout.state_shardings
    if params is not None:
        params = put_global(params, shardings.params)
    return jax.jit(create, out_shardings=shardings)(rng, params)


def objective_optimizer(objective: Objective, opts: OptimizerSpec, steps: int
                        ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule) of a run of `steps` updates, with the params the objective does not train frozen."""
    trainable = objective.trainable_mask(jax.eval_shape(objective.init, jax.random.key(0)))
    return make_optimizer(opts, int(steps), trainable)


def batch_layout(objective: Objective, mesh: Mesh, batch_size: int, seq_len: int) -> dict[str, jax.ShapeDtypeStruct]:
    """ShapeDtypeStructs (with shardings) of one global batch of the objective's fields."""
    return {name: jax.ShapeDtypeStruct(shape, np.dtype(dtype), sharding=batch_sharding(mesh, len(shape)))
            for name, (shape, dtype) in objective.batch_fields(batch_size, seq_len).items()}


def _log_memory(what: str, compiled: Any) -> dict[str, int]:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        stats = None
    if stats is None:
        log.info("%s compiled (no memory analysis on this backend)", what)
        return {}
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes",
              "generated_code_size_in_bytes")
    out = {f: int(getattr(stats, f, 0)) for f in fields}
    log.info("%s memory per device: arguments %.1f MiB, outputs %.1f MiB, temporaries %.1f MiB, aliased %.1f MiB",
             what, *(out[f] / 2**20 for f in fields[:4]))
    return out


@dataclasses.dataclass
class CompiledSteps:
    train: Any
    eval: Any
    compile_s: float
    memory: dict[str, int]
    batch_shardings: dict[str, NamedSharding]


def compile_steps(objective: Objective, tx: optax.GradientTransformation, schedule: optax.Schedule,
                  layout: StateLayout, batch_size: int, seq_len: int, grad_accum: int = 1,
                  with_eval: bool = True, constrain_activations: bool = True) -> CompiledSteps:
    """Lower and compile the train (and eval) step ahead of time for these shapes and shardings,
    logging the compiler's per-device memory estimate before the first step runs.

    `constrain_activations` traces under the mesh and LOGICAL_RULES so the model's
    nn.with_logical_constraint calls pin activation layouts (batch over data+fsdp, heads and mlp
    over tensor); off, the compiler propagates layouts from the params' and batch's shardings.
    """
    mesh = layout.mesh
    batch = batch_layout(objective, mesh, batch_size, seq_len)
    batch_shardings = {k: v.sharding for k, v in batch.items()}
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=replicated(mesh))
    rep = replicated(mesh)
    start = time.perf_counter()
    train = jax.jit(make_train_step(objective, tx, schedule, grad_accum),
                    in_shardings=(layout.state_shardings, layout.frozen_shardings, batch_shardings, rep),
                    out_shardings=(layout.state_shardings, rep), donate_argnums=(0,))
    context = activation_sharding(mesh) if constrain_activations else contextlib.nullcontext()
    with context:
        try:
            train_c = train.lower(layout.abstract_state, layout.abstract_frozen, batch, key).compile()
        except jax.errors.JaxRuntimeError as e:  # the TPU compiler refuses a step larger than HBM
            raise (refusal_error(str(e)) or e) from e
        eval_c = None
        if with_eval:
            ev = jax.jit(make_eval_step(objective),
                         in_shardings=(layout.state_shardings.params, layout.frozen_shardings, batch_shardings, rep),
                         out_shardings=rep)
            eval_c = ev.lower(layout.abstract_state.params, layout.abstract_frozen, batch, key).compile()
    compile_s = time.perf_counter() - start
    memory = _log_memory("train step", train_c)
    return CompiledSteps(train_c, eval_c, compile_s, memory, batch_shardings)
