"""Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8 (see test_parallel_sharding.py).

Trains the same tiny BERT (MLM + NSP, dropout off; or, with a third argument "xlnet", a tiny XLNet with
the permutation LM) for a few steps on the same batches under several meshes and prints one JSON
object: per mesh the losses and the bytes each device holds.
"""

from __future__ import annotations

import json
import sys

import jax
import ml_collections
import numpy as np

from jaxbert.objectives.base import build_objective
from jaxbert.parallel import bytes_per_device, create_mesh, host_to_global
from jaxbert.train.optim import make_optimizer
from jaxbert.train.sharded import compile_steps, init_state, state_layout
from jaxbert.train.spec import OptimizerSpec

MODEL = {"preset": "bert-tiny", "vocab_size": 256, "hidden_size": 64, "num_heads": 2, "intermediate_size": 128,
         "num_layers": 2, "max_position_embeddings": 32, "hidden_dropout": 0.0, "attention_dropout": 0.0}
XLNET = {"preset": "xlnet-base", "vocab_size": 256, "hidden_size": 64, "num_heads": 2, "intermediate_size": 128,
         "num_layers": 2, "hidden_dropout": 0.0, "attention_dropout": 0.0}
OBJECTIVES = {"bert": (MODEL, {"name": "mlm", "pair_task": "nsp", "max_predictions": 4}),
              "xlnet": (XLNET, {"name": "plm", "max_predictions": 4})}
BATCH, SEQ = 16, 16


def batches(steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        lengths = rng.integers(SEQ // 2, SEQ + 1, BATCH)
        mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int32)
        out.append({"input_ids": (rng.integers(5, 256, (BATCH, SEQ)) * mask).astype(np.int32),
                    "attention_mask": mask,
                    "token_type_ids": (np.arange(SEQ)[None, :] >= lengths[:, None] // 2).astype(np.int32) * mask,
                    "next_sentence_label": rng.integers(0, 2, BATCH).astype(np.int32)})
    return out


def run(mesh_spec: dict, devices: int, steps: int, family: str = "bert") -> dict:
    model, objective_options = OBJECTIVES[family]
    config = ml_collections.ConfigDict({"model": model, "objective": objective_options})
    objective = build_objective(config)
    tx, schedule = make_optimizer(OptimizerSpec(lr=1e-3), 100)
    mesh = create_mesh(mesh_spec, jax.devices()[:devices])
    layout = state_layout(objective, tx, mesh)
    state = init_state(objective, tx, layout, jax.random.key(0))
    compiled = compile_steps(objective, tx, schedule, layout, BATCH, SEQ, with_eval=False)
    held = {"params": bytes_per_device(state.params), "opt_state": bytes_per_device(state.opt_state)}
    losses = []
    key = jax.random.key(1)
    for batch in batches(steps):
        wanted = {k: batch[k] for k in objective.batch_fields(BATCH, SEQ)}
        state, metrics = compiled.train(state, {}, host_to_global(wanted, mesh), key)
        losses.append(float(metrics["loss"]))
    per_device = [held["params"].get(d.id, 0) + held["opt_state"].get(d.id, 0) for d in jax.devices()[:devices]]
    total = sum(x.nbytes for x in jax.tree_util.tree_leaves((state.params, state.opt_state)))
    return {"losses": losses, "bytes_per_device": per_device, "total_bytes": total}


def main() -> None:
    meshes = json.loads(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    family = sys.argv[3] if len(sys.argv) > 3 else "bert"
    print(json.dumps({name: run(spec, devices, steps, family) for name, (spec, devices) in meshes.items()}))


if __name__ == "__main__":
    main()
