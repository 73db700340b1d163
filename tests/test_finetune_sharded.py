"""The fine-tuning eval on a mesh (params sharded data x fsdp x tensor over 8 fake CPU devices) gives the
single-device logits, including a last batch that needs padding."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, jax, numpy as np
from jaxbert.config import ModelConfig
from jaxbert.finetune.predict import predict_logits, predict_logits_sharded
from jaxbert.model import logical_axes, param_shapes
from jaxbert.objectives.finetune import task_model_config
from jaxbert.parallel import create_mesh, tree_shardings

config = task_model_config(ModelConfig(vocab_size=101, hidden_size=32, num_layers=2, num_heads=4,
                                       intermediate_size=64, max_position_embeddings=32), "token", 5)
rng = np.random.default_rng(0)
params = jax.tree_util.tree_map(lambda s: rng.normal(0, 0.3, s.shape).astype(np.float32), param_shapes(config))
mesh = create_mesh({"data": 2, "fsdp": 2, "tensor": 2})
sharded = jax.device_put(params, tree_shardings(params, logical_axes(config), mesh))
arrays = {"input_ids": rng.integers(5, 101, (13, 16)), "attention_mask": np.ones((13, 16), np.int32),
          "token_type_ids": np.zeros((13, 16), np.int32)}
arrays["attention_mask"][3, 9:] = 0
ours = predict_logits_sharded(config, sharded, arrays, 6, mesh)
reference = predict_logits(config, params, arrays, 4)
kernel = sharded["encoder"]["layers"]["ffn"]["intermediate"]["kernel"]
print(json.dumps({"devices": jax.device_count(), "shape": list(ours.shape),
                  "max_diff": float(np.abs(ours - reference).max()), "scale": float(np.abs(reference).max()),
                  "distinct_shards": len({str(s.index) for s in kernel.addressable_shards})}))
"""


def test_sharded_eval_equals_single_device() -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8 and result["shape"] == [13, 16, 5]
    assert result["distinct_shards"] > 1  # the params really are split across devices
    assert result["max_diff"] < 1e-4 * max(1.0, result["scale"])
