"""Exact resume of `jaxbert pretrain` after SIGKILL / SIGTERM, and crash safety under repeated kills."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from etils import epath

from jaxbert.formats import CHECKPOINT_DIR, latest_complete_step
from jaxbert.train.metrics import read_metrics

STEPS = 24
CRASH_STEPS = 150  # long enough for ten kills at random moments
ARGS = ["--config", "configs/smoke/bert.py", "--config.train.batch_size=16", "--config.train.log_every=1",
        "--config.train.eval_every=0", "--config.train.progress=false", "--config.data.vocab_size=600",
        "--config.checkpoint.keep=100"]


def command(workdir: Path, shared: Path | None, every: int, steps: int = STEPS) -> list[str]:
    cmd = [sys.executable, "-m", "jaxbert.cli", "pretrain", *ARGS, "--workdir", str(workdir),
           f"--config.checkpoint.every={every}", f"--config.train.steps={steps}"]
    if shared is not None:  # reuse the first run's vocabulary
        cmd += [f"--config.data.tokenizer={shared / 'tokenizer'}"]
    return cmd


def run_to_end(workdir: Path, shared: Path | None = None, every: int = 4, steps: int = STEPS) -> dict:
    out = subprocess.run(command(workdir, shared, every, steps), capture_output=True, text=True, timeout=900,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(workdir: Path, shared: Path, every: int, steps: int = STEPS) -> subprocess.Popen:
    return subprocess.Popen(command(workdir, shared, every, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})


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


def params_at(workdir: Path, step: int = STEPS):
    return ocp.StandardCheckpointHandler().restore(epath.Path(workdir) / CHECKPOINT_DIR / str(step) / "params")


def losses(workdir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(workdir) if "loss" in r]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted reference run."""
    workdir = tmp_path_factory.mktemp("straight")
    assert run_to_end(workdir)["step"] == STEPS
    return workdir


def assert_same_run(a: Path, b: Path, steps: int = STEPS) -> None:
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_at(a, steps), params_at(b, steps))
    assert losses(a) == losses(b)
    assert [s for s, _ in losses(b)] == list(range(1, steps + 1))  # every step logged once


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_bit_identically(straight, tmp_path, sig):
    proc = start(tmp_path, straight, every=4)
    wait_for_step(proc, tmp_path, STEPS // 2 + 1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    if sig == signal.SIGTERM:
        # Preemption: a checkpoint at the step it stopped at, a clean exit, a message saying how to resume.
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["status"] == "preempted" and latest_complete_step(tmp_path) == summary["step"] > STEPS // 2
        assert "run the same command again to resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert run_to_end(tmp_path, straight)["status"] == "finished"
    assert_same_run(straight, tmp_path)


@pytest.mark.slow
def test_ten_random_kills_never_lose_or_repeat_a_step(straight, tmp_path):
    reference = tmp_path / "reference"
    run_to_end(reference, straight, every=3, steps=CRASH_STEPS)
    workdir = tmp_path / "killed"
    rng = random.Random(0)
    report = []
    while len(report) < 10:
        before = latest_complete_step(workdir) if (workdir / CHECKPOINT_DIR).is_dir() else None
        assert before != CRASH_STEPS, "the run finished before ten kills; raise CRASH_STEPS"
        proc = start(workdir, straight, every=3, steps=CRASH_STEPS)
        wait_for_step(proc, workdir, (before or 0) + 1)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        _, err = proc.communicate(timeout=120)
        resumed_from = [int(line.rsplit("step ", 1)[1].split()[0]) for line in err.splitlines()
                        if "resuming from the checkpoint at step" in line]
        assert resumed_from == ([before] if before else [])  # restarted exactly at the last complete save
        unfinished = sorted(p.name for p in (workdir / CHECKPOINT_DIR).iterdir() if "tmp" in p.name)
        latest = latest_complete_step(workdir)
        if latest is not None:  # the newest complete checkpoint reads back
            assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(params_at(workdir, latest)))
        report.append({"resumed_from": before, "latest_after_kill": latest, "unfinished_dirs": unfinished})
    final = run_to_end(workdir, straight, every=3, steps=CRASH_STEPS)
    assert final["status"] == "finished"
    assert_same_run(reference, workdir, CRASH_STEPS)
    print(json.dumps(report))
