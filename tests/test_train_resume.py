"""Exact resume of `jaxbert pretrain` after SIGKILL / SIGTERM, and crash safety under repeated kills."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from pretrain_runs import STEPS, assert_same_run, params_at, run_to_end, start, wait_for_step

from jaxbert.formats import CHECKPOINT_DIR, latest_complete_step

CRASH_STEPS = 150  # long enough for ten kills at random moments


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted reference run."""
    workdir = tmp_path_factory.mktemp("straight")
    assert run_to_end(workdir)["step"] == STEPS
    return workdir


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
