"""Helpers for tests that run `jaxbert pretrain` in subprocesses (smoke BERT), kill them, and compare runs.

Workdirs may be local paths or gs:// URLs (with the GCS emulator fixture active).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxbert import storage
from jaxbert.formats import CHECKPOINT_DIR
from jaxbert.train.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
STEPS = 24
ARGS = ["--config", "configs/smoke/bert.py", "--config.train.batch_size=16", "--config.train.log_every=1",
        "--config.train.eval_every=0", "--config.train.progress=false", "--config.data.vocab_size=600",
        "--config.checkpoint.keep=100"]


def command(workdir: Path | str, shared: Path | str | None, every: int, steps: int = STEPS,
            extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "jaxbert.cli", "pretrain", *ARGS, "--workdir", str(workdir),
           f"--config.checkpoint.every={every}", f"--config.train.steps={steps}", *extra]
    if shared is not None:  # reuse the first run's vocabulary
        cmd += [f"--config.data.tokenizer={storage.path(shared) / 'tokenizer'}"]
    return cmd


def run_to_end(workdir: Path | str, shared: Path | str | None = None, every: int = 4, steps: int = STEPS,
               extra: tuple[str, ...] = ()) -> dict:
    out = subprocess.run(command(workdir, shared, every, steps, extra), capture_output=True, text=True, timeout=900,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(workdir: Path | str, shared: Path | str | None, every: int, steps: int = STEPS,
          extra: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(command(workdir, shared, every, steps, extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=REPO)


def wait_for_step(proc: subprocess.Popen, workdir: Path, step: int, timeout: float = 600) -> None:
    """Wait until this process has logged `step` (rows an earlier, killed run left do not count)."""
    started, deadline = time.time(), time.monotonic() + timeout
    metrics = workdir / "metrics.jsonl"
    while time.monotonic() < deadline:
        fresh = metrics.exists() and metrics.stat().st_mtime > started
        rows = [r for r in read_metrics(workdir) if "loss" in r] if fresh else []
        if rows and rows[-1]["step"] >= step:
            return
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.02)
    raise AssertionError(f"no step {step} within {timeout}s")


def params_at(workdir: Path | str, step: int = STEPS):
    return ocp.StandardCheckpointHandler().restore(storage.path(workdir) / CHECKPOINT_DIR / str(step) / "params")


def losses(workdir: Path | str) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(workdir) if "loss" in r]


def assert_same_run(a: Path | str, b: Path | str, steps: int = STEPS) -> None:
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_at(a, steps), params_at(b, steps))
    assert losses(a) == losses(b)
    assert [s for s, _ in losses(b)] == list(range(1, steps + 1))  # every step logged once
