"""Sharded training equals single-device training: 8 fake CPU devices in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PROBE = Path(__file__).with_name("sharding_probe.py")


def probe(meshes: dict, steps: int = 5, devices: int = 8, family: str = "bert") -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(PROBE), json.dumps(meshes), str(steps), family], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


STUB_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jax
from train_stub import sharded_run
assert jax.device_count() == 8
print(json.dumps(sharded_run(sys.argv[2], {"fsdp": 4, "tensor": 2})))
"""


@pytest.mark.slow
def test_the_loop_on_eight_devices_matches_one_device(tmp_path):
    """The loop with params and optimizer state sharded over fsdp x tensor (a stub model: fast to compile)."""
    from train_stub import sharded_run

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", STUB_RUN, str(PROBE.parent), str(tmp_path / "sharded")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    sharded = json.loads(out.stdout.strip().splitlines()[-1])
    single = sharded_run(str(tmp_path / "single"), {"data": 1})
    np.testing.assert_allclose(sharded, single, rtol=1e-6, atol=1e-6)
    assert single[-1] < single[0]


@pytest.mark.slow
def test_fsdp_and_tensor_parallel_match_one_device():
    res = probe({"single": [{"data": 1}, 1], "fsdp4_tensor2": [{"fsdp": 4, "tensor": 2}, 8]})
    # fp32 tolerance: sharded reductions sum in a different order.
    np.testing.assert_allclose(res["fsdp4_tensor2"]["losses"], res["single"]["losses"], rtol=2e-6, atol=2e-6)
    assert res["single"]["losses"][0] != res["single"]["losses"][-1]  # the steps did update the params
    assert max(res["fsdp4_tensor2"]["bytes_per_device"]) < 0.2 * res["single"]["total_bytes"]


@pytest.mark.slow
def test_every_mesh_layout_matches_one_device_and_fsdp_divides_memory():
    res = probe({"single": [{"data": 1}, 1], "data8": [{"data": 8}, 8], "fsdp8": [{"fsdp": 8}, 8],
                 "tensor2_data4": [{"data": 4, "tensor": 2}, 8]})
    for name in ("data8", "fsdp8", "tensor2_data4"):
        np.testing.assert_allclose(res[name]["losses"], res["single"]["losses"], rtol=2e-6, atol=2e-6,
                                   err_msg=name)
    total = res["single"]["total_bytes"]
    assert res["data8"]["bytes_per_device"] == [total] * 8  # pure data parallel replicates everything
    fsdp = res["fsdp8"]["bytes_per_device"]
    # About 1/8 each: only counters, the NSP bias and dims the rules give to "tensor" stay replicated.
    assert max(fsdp) / total < 0.15, fsdp
    assert sum(fsdp) >= total
    print(json.dumps({k: {"losses": v["losses"], "max_bytes_per_device": max(v["bytes_per_device"]),
                          "total_bytes": v["total_bytes"]} for k, v in res.items()}))
