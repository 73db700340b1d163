"""Save a sharded train state on one mesh and restore it on another (run in subprocesses with fake devices).

    python checkpoint_probe.py save DIR MESH_JSON      # writes DIR/workdir checkpoints + DIR/expected.npz
    python checkpoint_probe.py restore DIR MESH_JSON   # prints JSON: equal?, shardings, bytes per device
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxbert.objectives.base import build_objective
from jaxbert.parallel import bytes_per_device, create_mesh
from jaxbert.train.checkpoint import Checkpointer, checkpoint_meta
from jaxbert.train.optim import make_optimizer
from jaxbert.train.sharded import init_state, state_layout
from jaxbert.train.spec import OptimizerSpec
from jaxbert.train.state import TrainState

MODEL = {"preset": "bert-tiny", "vocab_size": 256, "hidden_size": 64, "num_heads": 2, "intermediate_size": 128,
         "num_layers": 2, "max_position_embeddings": 32}
CONFIG = ml_collections.ConfigDict({"model": MODEL, "objective": {"name": "mlm", "pair_task": "nsp"}})


def _setup(mesh_spec: dict):
    objective = build_objective(CONFIG)
    tx, _ = make_optimizer(OptimizerSpec(lr=1e-3), 10)
    mesh = create_mesh(mesh_spec)
    return objective, tx, state_layout(objective, tx, mesh)


def _flat(state: TrainState) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path((state.params, state.opt_state))[0]
    return {jax.tree_util.keystr(k): np.asarray(jax.device_get(v)) for k, v in leaves}


def save(directory: Path, mesh_spec: dict) -> None:
    objective, tx, layout = _setup(mesh_spec)
    state = init_state(objective, tx, layout, jax.random.key(0))
    # Non-trivial optimizer moments, computed in place on their shards.
    noise = jax.jit(lambda t: jax.tree_util.tree_map(lambda x: x + 0.5 if x.dtype == np.float32 else x, t),
                    out_shardings=layout.state_shardings.opt_state)
    state = TrainState(jax.device_put(np.int32(7), layout.state_shardings.step), state.params,
                       noise(state.opt_state))
    ckpt = Checkpointer(directory / "workdir", async_save=True)
    ckpt.save(state, checkpoint_meta(objective, CONFIG))
    ckpt.close()
    np.savez(directory / "expected.npz", **_flat(state))
    print(json.dumps({"saved_bytes_per_device": bytes_per_device(state.params)}))


def restore(directory: Path, mesh_spec: dict) -> dict:
    objective, tx, layout = _setup(mesh_spec)
    ckpt = Checkpointer(directory / "workdir")
    step = ckpt.latest_step()
    state = ckpt.restore(step, layout.abstract_state)
    ckpt.close()
    expected = np.load(directory / "expected.npz")
    got = _flat(state)
    word = state.params["embeddings"]["word"]["embedding"]
    return {"step": step, "restored_step": int(state.step), "equal": all(np.array_equal(got[k], expected[k])
                                                                          for k in expected.files),
            "keys_match": sorted(got) == sorted(expected.files), "devices": jax.device_count(),
            "word_embedding_spec": str(word.sharding.spec), "word_embedding_shards": len(word.addressable_shards),
            "bytes_per_device": bytes_per_device(state.params)}


if __name__ == "__main__":
    mode, where, mesh = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    if mode == "save":
        save(where, mesh)
    else:
        print(json.dumps(restore(where, mesh)))
