"""Orbax checkpoints: restore onto a different mesh, keep policies, atomicity, exported model subtrees, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from train_stub import Regression, data_stream, train_config

from jaxbert.formats import CHECKPOINT_DIR, is_workdir, latest_complete_step, read_workdir
from jaxbert.objectives.base import build_objective
from jaxbert.objectives.mlm import MaskedLM
from jaxbert.train.checkpoint import Checkpointer, CheckpointError, checkpoint_meta
from jaxbert.train.loop import train
from jaxbert.train.state import TrainState

PROBE = Path(__file__).with_name("checkpoint_probe.py")


def _probe(mode: str, where: Path, mesh: dict, devices: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(PROBE), mode, str(where), json.dumps(mesh)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fsdp8_checkpoint(tmp_path_factory) -> Path:
    """A real tiny-BERT train state saved from an fsdp=8 mesh of 8 fake devices."""
    where = tmp_path_factory.mktemp("fsdp8")
    saved = _probe("save", where, {"fsdp": 8}, devices=8)
    assert len(saved["saved_bytes_per_device"]) == 8
    return where


@pytest.mark.slow
def test_state_saved_with_fsdp8_restores_on_one_device(fsdp8_checkpoint):
    import checkpoint_probe

    one = checkpoint_probe.restore(fsdp8_checkpoint, {"data": 1})  # this process: one CPU device
    assert one["equal"] and one["keys_match"] and one["step"] == 7 and one["restored_step"] == 7
    assert one["devices"] == 1 and one["word_embedding_shards"] == 1


@pytest.mark.slow
def test_state_saved_with_fsdp8_restores_on_two_devices(fsdp8_checkpoint):
    two = _probe("restore", fsdp8_checkpoint, {"fsdp": 2}, devices=2)
    assert two["equal"] and two["keys_match"] and two["step"] == 7 and two["restored_step"] == 7
    assert two["word_embedding_spec"] == "P('tensor', 'fsdp')" and two["word_embedding_shards"] == 2


def test_keep_last_n_plus_every_k(tmp_path):
    config = train_config(steps=10)
    config.checkpoint.update(dict(every=2, keep=2, keep_every=4))
    train(config, tmp_path, Regression(), data_stream(8))
    steps = sorted(int(p.name) for p in (tmp_path / CHECKPOINT_DIR).iterdir() if p.name.isdigit())
    assert steps == [4, 8, 10]


KILLED_SAVE = """
import os, sys, time
import jax.numpy as jnp
from jaxbert.train.checkpoint import Checkpointer
from jaxbert.train.state import TrainState
ckpt = Checkpointer(sys.argv[1], async_save=True)
big = {"w": jnp.ones((2000, 2000))}
ckpt.save(TrainState(jnp.asarray(1), big, {}), {"step": 1})
ckpt.wait()
ckpt.save(TrainState(jnp.asarray(2), big, {}), {"step": 2})
# Die as soon as the async save of step 2 has started writing (its tmp dir exists), never after it ends.
tmp = os.path.join(sys.argv[1], "checkpoints", "2.orbax-checkpoint-tmp")
deadline = time.monotonic() + 60
while not os.path.isdir(tmp) and time.monotonic() < deadline:
    pass
os._exit(9)
"""


def test_save_killed_half_way_is_ignored_and_cleaned_up(tmp_path):
    out = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 9, out.stderr[-2000:]
    leftover = tmp_path / CHECKPOINT_DIR / "2.orbax-checkpoint-tmp"
    assert leftover.is_dir()  # the kill did interrupt the save
    assert latest_complete_step(tmp_path) == 1
    ckpt = Checkpointer(tmp_path)  # the next run's manager removes the debris
    assert ckpt.latest_step() == 1 and ckpt.all_steps() == [1]
    ckpt.close()
    assert not leftover.exists()


def _mlm_objective():
    config = ml_collections.ConfigDict({"model": {"preset": "bert-tiny", "vocab_size": 64, "hidden_size": 32,
                                                  "intermediate_size": 64},
                                        "objective": {"name": "mlm", "pair_task": "nsp", "max_predictions": 4}})
    return build_objective(config)


class _Student(MaskedLM):
    """Two models in the param tree; the exported one is params["student"] (as a distillation would)."""

    export_path = ("student",)

    def init(self, rng):
        return {"student": super().init(rng), "extra": {"w": jax.numpy.ones((3,))}}

    def param_axes(self):
        return {"student": super().param_axes(), "extra": {"w": jax.sharding.PartitionSpec(None)}}


def test_load_model_from_workdir_returns_the_exported_subtree(tmp_path):
    base = _mlm_objective()
    objective = _Student(base.model_config, base.masking, "nsp")
    params = jax.jit(objective.init)(jax.random.key(0))
    ckpt = Checkpointer(tmp_path, async_save=False)
    ckpt.save(TrainState(jax.numpy.asarray(3), params, {}), checkpoint_meta(objective, {"seed": 0}))
    ckpt.close()
    assert is_workdir(tmp_path)
    loaded = read_workdir(tmp_path)
    assert loaded.config == objective.model_config and loaded.tokenizer_dir is None
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params, params["student"])


def test_damaged_or_missing_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoints/ directory"):
        read_workdir(tmp_path)
    (tmp_path / CHECKPOINT_DIR).mkdir()
    with pytest.raises(CheckpointError, match="holds no complete checkpoint yet"):
        read_workdir(tmp_path)
    train(train_config(steps=4), tmp_path, Regression(), data_stream(8))
    for f in (tmp_path / CHECKPOINT_DIR / "4" / "params").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(b"not a tensorstore chunk")
    with pytest.raises(CheckpointError) as err:
        train(train_config(steps=8), tmp_path, Regression(), data_stream(8))
    assert "cannot restore step 4" in str(err.value) and "\n" not in str(err.value)
