"""XLNet pretraining on the one loop: `jaxbert pretrain --config configs/smoke/xlnet.py` learns (the
permutation-LM loss falls), resumes bit-identically after SIGKILL, and trains the same on 8 fake devices
(fsdp, fsdp x tensor) as on one; the workdir loads as an XLNet with its XLNet tokenizer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.train.metrics import read_metrics
from tests.test_parallel_sharding import probe
from tests.test_train_resume import params_at, wait_for_step

SMOKE = ["--config", "configs/smoke/xlnet.py", "--config.train.progress=false", "--config.data.vocab_size=600"]
REPO = Path(__file__).resolve().parents[1]


def _pretrain(workdir: Path, *extra: str, popen: bool = False):
    cmd = [sys.executable, "-m", "jaxbert.cli", "pretrain", *SMOKE, "--workdir", str(workdir), *extra]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _losses(workdir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(workdir) if "loss" in r]


SHORT = ("--config.train.steps=60", "--config.train.batch_size=16", "--config.train.log_every=1",
         "--config.train.warmup_steps=10", "--config.train.eval_every=0", "--config.checkpoint.every=60")


@pytest.mark.slow
def test_plm_loss_falls_and_the_workdir_loads_as_xlnet(tmp_path: Path) -> None:
    summary = _pretrain(tmp_path, *SHORT)
    assert summary["status"] == "finished" and summary["step"] == 60
    losses = [r["plm_loss"] for r in read_metrics(tmp_path) if "plm_loss" in r]
    assert len(losses) == 60 and abs(losses[0] - np.log(600)) < 0.3  # step 1: about uniform over the vocabulary
    last = np.mean(losses[-10:])
    assert last < losses[0] - 0.7 and last < np.mean(losses[10:20]), losses  # falls, and keeps falling
    rows = [r for r in read_metrics(tmp_path) if "plm_loss" in r]
    assert all(r["plm_targets"] > 8 for r in rows)  # about 64 // 6 = 10 targets per sequence
    p = jaxbert.load(tmp_path)
    assert p.config.family == "xlnet" and p.config.heads == ("lm",) and p.tokenizer.template == "xlnet"
    enc = p.tokenizer(["def f(x): return x"], max_length=16)
    assert p(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits["lm"].shape == (1, 16, 600)


@pytest.mark.slow
def test_killed_run_resumes_bit_identically(tmp_path: Path) -> None:
    args = ("--config.train.steps=24", "--config.train.batch_size=16", "--config.train.log_every=1",
            "--config.train.eval_every=0", "--config.checkpoint.every=4", "--config.checkpoint.keep=100")
    straight = tmp_path / "straight"
    _pretrain(straight, *args)
    killed = tmp_path / "killed"
    shared = (f"--config.data.tokenizer={straight / 'tokenizer'}",)
    proc = _pretrain(killed, *args, *shared, popen=True)
    wait_for_step(proc, killed, 13)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert _pretrain(killed, *args, *shared)["status"] == "finished"
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_at(straight, 24), params_at(killed, 24))
    assert _losses(straight) == _losses(killed)
    assert [s for s, _ in _losses(killed)] == list(range(1, 25))


@pytest.mark.slow
def test_fsdp_on_eight_devices_matches_one_device() -> None:
    res = probe({"single": [{"data": 1}, 1], "fsdp8": [{"fsdp": 8}, 8]}, family="xlnet")
    for name in ("fsdp8",):
        np.testing.assert_allclose(res[name]["losses"], res["single"]["losses"], rtol=2e-6, atol=2e-6, err_msg=name)
    assert res["single"]["losses"][0] != res["single"]["losses"][-1]
    assert max(res["fsdp8"]["bytes_per_device"]) < 0.2 * res["single"]["total_bytes"]
    print(json.dumps({k: {"losses": v["losses"], "max_bytes_per_device": max(v["bytes_per_device"])}
                      for k, v in res.items()}))
