"""Real processes joined by jax.distributed (gloo on CPU) against one process with the same two devices:
the same losses, eval figures and params, for pretraining (joined by JAX's SLURM detection or by an explicit
coordinator; restored on another process count) and for fine-tuning (fsdp across the two processes).

The pretraining runs share one reference (one process, two devices, 6 straight steps, checkpoints at 3 and
6) and one two-process start (steps 0-3); each restore test continues a copy of one of their step-3
checkpoints to step 6 on another process count and must reproduce the reference's steps 4-6.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbert.formats import load_training_params
from tests.finetune_fixtures import head_lines, tiny_pretrained

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("multihost_probe.py")
# A constant learning rate (end_lr = lr), so a run stopped at step 3 and restarted for 6 follows the
# same schedule as a straight 6-step run.
PRETRAIN = ["pretrain", "--config", "configs/smoke/bert.py", "--config.train.batch_size=8",
            "--config.train.log_every=1", "--config.train.eval_every=6", "--config.train.eval_batches=2",
            "--config.checkpoint.every=3", "--config.train.progress=false", "--config.train.warmup_steps=0",
            "--config.train.lr=2e-3", "--config.train.end_lr=2e-3", "--config.data.vocab_size=500",
            "--config.model.hidden_dropout=0.0", "--config.model.attention_dropout=0.0"]
PRETRAIN_KEYS = ("loss", "mlm_accuracy", "nsp_accuracy", "eval/loss", "eval/mlm_accuracy")


def _free_port(candidates: range | None = None) -> int:
    for _ in range(200):
        with socket.socket() as s:
            try:
                s.bind(("localhost", random.choice(candidates) if candidates else 0))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def _srun_variables(num_processes: int, process_id: int, job_id: int) -> dict[str, str]:
    """The variables `srun --ntasks=N` sets in task `process_id` of a one-node job step."""
    return {"SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id), "SLURM_STEP_ID": "0",
            "SLURM_NTASKS": str(num_processes), "SLURM_NPROCS": str(num_processes),
            "SLURM_STEP_NUM_TASKS": str(num_processes), "SLURM_PROCID": str(process_id),
            "SLURM_LOCALID": str(process_id), "SLURM_NODEID": "0", "SLURM_NNODES": "1",
            "SLURM_STEP_NUM_NODES": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODELIST": "localhost",
            "SLURM_JOB_NODELIST": "localhost", "SLURM_STEP_NODELIST": "localhost",
            "SLURM_TASKS_PER_NODE": str(num_processes), "SLURMD_NODENAME": "localhost"}


def _run(num_processes: int, args: list[str], tmp: Path, launcher: str = "config") -> list[dict]:
    """Run the command in `num_processes` processes at once; every process's JSON view.

    launcher "config": the processes get an explicit coordinator (--config.distributed.*); "slurm": they
    get only the variables srun sets, and JAX's SLURM detection must join them (the coordinator port is
    derived from the job id, so the job id is chosen to make it a free port). When one process fails the
    others would wait minutes for it at the next collective: they are killed, and every process's stderr
    tail is shown.
    """
    slurm_ports = range(65536 - 2**12, 65536)  # JAX's SlurmCluster: port = job id % 4096 + 61440
    port = _free_port(slurm_ports if launcher == "slurm" else None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["JAXBERT_PROBE_LAUNCHER"] = launcher
    logs = [tmp / f"process-{port}-{i}.log" for i in range(num_processes)]
    procs = []
    for i, log in enumerate(logs):
        proc_env = {**env, **(_srun_variables(num_processes, i, 3 * 2**12 + port - slurm_ports.start)
                              if launcher == "slurm" else {})}
        procs.append(subprocess.Popen([sys.executable, str(PROBE), str(num_processes), str(i), str(port), *args],
                                      cwd=REPO, env=proc_env, stdout=subprocess.PIPE, stderr=log.open("w"),
                                      text=True))
    deadline = time.monotonic() + 900
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
    codes = [p.wait() for p in procs]
    tails = "\n".join(f"--- process {i} (exit {c}):\n{log.read_text()[-2500:]}"
                       for i, (c, log) in enumerate(zip(codes, logs, strict=True)))
    assert codes == [0] * num_processes, tails
    views = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in procs]
    assert all(v["rc"] == 0 for v in views), views
    for view, log in zip(views, logs, strict=True):
        view["log"] = log.read_text()
    return views


def _layout(views: list[dict]) -> list[tuple[int, int, int, int]]:
    return [(v["process_index"], v["process_count"], v["global_devices"], v["local_devices"]) for v in views]


def _rows(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _compare(reference: Path, other: Path, keys: tuple[str, ...], steps: int) -> None:
    """`other` logged train steps 1..steps once each, with the reference's figures, and holds its params."""
    for kind in ("loss", "eval/"):  # train rows, then eval rows (a run that stops also evaluates there)
        ref_rows = {r["step"]: r for r in _rows(reference) if any(k.startswith(kind) for k in r)}
        rows = [r for r in _rows(other) if any(k.startswith(kind) for k in r)]
        logged = [r["step"] for r in rows]
        assert len(logged) == len(set(logged)), logged  # each step written once
        if kind == "loss":
            assert logged == list(range(1, steps + 1)), logged
        for b in rows:
            a = ref_rows.get(b["step"], {})
            for key in keys:
                if key in a:
                    assert abs(a[key] - b[key]) < 1e-5, (b["step"], key, a[key], b[key])
    _, pa = load_training_params(reference, steps)
    _, pb = load_training_params(other, steps)
    diffs = jax.tree_util.tree_map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), pa, pb)
    assert max(jax.tree_util.tree_leaves(diffs)) < 1e-5


def _copy_at_step(workdir: Path, step: int, to: Path) -> Path:
    """A copy of a finished workdir as it was after its checkpoint at `step` (later checkpoints removed).

    Its datasets are left out and rebuilt (the same examples: same corpus text, tokenizer and seed): a
    dataset records the absolute path of the corpus it was built from, which for the smoke configs lies
    inside the workdir, so a moved dataset no longer counts as built from the copy's corpus.
    """
    shutil.copytree(workdir, to, ignore=lambda folder, names: ["data"] if Path(folder) == workdir else [])
    for ckpt in (to / "checkpoints").iterdir():
        if ckpt.name.isdigit() and int(ckpt.name) > step:
            shutil.rmtree(ckpt)
    return to


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process with two devices, 6 straight steps (checkpoints at 3 and 6)."""
    tmp = tmp_path_factory.mktemp("reference")
    [view] = _run(1, [*PRETRAIN, "--workdir", str(tmp / "run"), "--config.train.steps=6"], tmp)
    assert _layout([view]) == [(0, 1, 2, 2)]
    return tmp / "run"


def _args(reference: Path, workdir: Path, steps: int) -> list[str]:
    # The reference's vocabulary for every run (WordPiece training breaks count ties at random).
    return [*PRETRAIN, "--workdir", str(workdir), f"--config.data.tokenizer={reference / 'tokenizer'}",
            f"--config.train.steps={steps}"]


@pytest.fixture(scope="module")
def srun_start(reference, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Two processes started as srun starts them, joined by JAX's SLURM detection: steps 0-3."""
    tmp = tmp_path_factory.mktemp("srun")
    views = _run(2, _args(reference, tmp / "run", 3), tmp, launcher="slurm")
    return tmp / "run", views


@pytest.mark.slow
def test_two_srun_tasks_form_one_cluster_through_jax_slurm_detection(reference, srun_start):
    workdir, views = srun_start
    assert _layout(views) == [(0, 2, 2, 1), (1, 2, 2, 1)]
    assert all("initialising jax.distributed (slurm, 2 processes)" in v["log"] for v in views)
    _compare(reference, workdir, PRETRAIN_KEYS, steps=3)


@pytest.mark.slow  # the same restore path as the 1 -> 2 test below, which stays in the default run
def test_a_two_process_restart_equals_one_straight_process(reference, srun_start, tmp_path):
    two = _copy_at_step(srun_start[0], 3, tmp_path / "two")
    views = _run(2, _args(reference, two, 6), tmp_path)  # resumes from step 3: params, optimizer, data
    assert _layout(views) == [(0, 2, 2, 1), (1, 2, 2, 1)]
    _compare(reference, two, PRETRAIN_KEYS, steps=6)
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_in_one_process(reference, srun_start, tmp_path):
    one = _copy_at_step(srun_start[0], 3, tmp_path / "one")
    [view] = _run(1, _args(reference, one, 6), tmp_path)
    assert "restoring the data position saved by process_0-of-2.json" in view["log"]
    _compare(reference, one, PRETRAIN_KEYS, steps=6)


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_in_two_processes(reference, tmp_path):
    two = _copy_at_step(reference, 3, tmp_path / "two")
    # The reference's own config (its tokenizer is in the copy): a resume may not change data.tokenizer.
    views = _run(2, [*PRETRAIN, "--workdir", str(two), "--config.train.steps=6"], tmp_path)
    assert all("restoring the data position saved by process_0-of-1.json" in v["log"] for v in views)
    _compare(reference, two, PRETRAIN_KEYS, steps=6)


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_in_four_processes(reference, srun_start, tmp_path):
    four = _copy_at_step(srun_start[0], 3, tmp_path / "four")
    views = _run(4, _args(reference, four, 6), tmp_path)
    assert _layout(views) == [(i, 4, 4, 1) for i in range(4)]
    _compare(reference, four, PRETRAIN_KEYS, steps=6)


@pytest.mark.slow
def test_two_process_fsdp_finetuning_equals_one_data_parallel_process(tmp_path, shared_data, minilm_dir):
    init = tmp_path / "tiny"
    tiny_pretrained(minilm_dir).save(init)
    sst = shared_data / "glue/sst2/train.tsv"
    train, held_out = head_lines(sst, tmp_path / "train.tsv", 64), head_lines(sst, tmp_path / "dev.tsv", 36, skip=64)
    args = ["finetune", "--config", "configs/finetune/sst2.py", f"--config.init={init}",
            f"--config.data.train={train}", f"--config.data.eval={held_out}", "--config.train.steps=6",
            "--config.train.batch_size=8", "--config.train.seq_len=32", "--config.train.log_every=1",
            "--config.train.eval_every=3", "--config.train.progress=false", "--config.eval.batch_size=8",
            "--config.model.hidden_dropout=0.0", "--config.model.attention_dropout=0.0",
            "--config.task.classifier_dropout=0.0", "--config.train.lr=1e-3"]
    reference, two = tmp_path / "one", tmp_path / "two"
    _run(1, [*args, "--workdir", str(reference)], tmp_path)
    # Two processes shard the params (fsdp) instead of replicating them: the best model must be gathered
    # across processes before process 0 writes it.
    _run(2, [*args, "--workdir", str(two), "--config.mesh.data=1", "--config.mesh.fsdp=2"], tmp_path)
    _compare(reference, two, ("loss", "accuracy", "eval/accuracy"), steps=6)
    assert (two / "best" / "jaxbert.json").is_file()
