"""Two real processes joined by jax.distributed (gloo on CPU) against one process with the same two devices:
the same losses, eval figures and final params, for pretraining (with a restart) and for fine-tuning (fsdp
across the two processes)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

import jaxbert
from tests.finetune_fixtures import head_lines, tiny_pretrained

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("multihost_probe.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run(num_processes: int, args: list[str], tmp: Path) -> list[dict]:
    """Run the command in `num_processes` processes at once; every process's JSON view.

    When one process fails the others would wait minutes for it at the next collective: they are killed,
    and every process's stderr tail is shown.
    """
    port = str(_free_port())
    logs = [tmp / f"process-{port}-{i}.log" for i in range(num_processes)]
    procs = [subprocess.Popen([sys.executable, str(PROBE), str(num_processes), str(i), port, *args], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
             for i, log in enumerate(logs)]
    deadline = time.monotonic() + 600
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
    return views


def _rows(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _compare(reference: Path, two: Path, keys: tuple[str, ...]) -> None:
    for kind in ("loss", "eval/"):  # train rows, then eval rows (a resumed run also evaluated where it stopped)
        ref_rows = {r["step"]: r for r in _rows(reference) if any(k.startswith(kind) for k in r)}
        two_rows = [r for r in _rows(two) if any(k.startswith(kind) for k in r)]
        steps = [r["step"] for r in two_rows]
        assert len(steps) == len(set(steps)) and set(ref_rows) <= set(steps)  # each step written once
        for b in two_rows:
            a = ref_rows.get(b["step"], {})
            for key in keys:
                if key in a:
                    assert abs(a[key] - b[key]) < 1e-5, (b["step"], key, a[key], b[key])
    pa, pb = jaxbert.load(reference).params, jaxbert.load(two).params
    diffs = jax.tree_util.tree_map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), pa, pb)
    assert max(jax.tree_util.tree_leaves(diffs)) < 1e-5


def test_two_process_pretraining_with_a_restart_equals_one_straight_process(tmp_path):
    # A constant learning rate (end_lr = lr), so a run stopped at step 3 and restarted for 6 follows the
    # same schedule as a straight 6-step run.
    args = ["pretrain", "--config", "configs/smoke/bert.py", "--config.train.batch_size=8",
            "--config.train.log_every=1", "--config.train.eval_every=6", "--config.train.eval_batches=2",
            "--config.checkpoint.every=3", "--config.train.progress=false", "--config.train.warmup_steps=0",
            "--config.train.lr=2e-3", "--config.train.end_lr=2e-3", "--config.data.vocab_size=500",
            "--config.model.hidden_dropout=0.0", "--config.model.attention_dropout=0.0"]
    reference, two = tmp_path / "one", tmp_path / "two"
    [view] = _run(1, [*args, "--workdir", str(reference), "--config.train.steps=6"], tmp_path)
    assert view["process_count"] == 1 and view["global_devices"] == 2
    # The same vocabulary for both (WordPiece training breaks count ties at random).
    two_args = [*args, "--workdir", str(two), f"--config.data.tokenizer={reference / 'tokenizer'}"]
    _run(2, [*two_args, "--config.train.steps=3"], tmp_path)
    views = _run(2, [*two_args, "--config.train.steps=6"], tmp_path)  # resumes from step 3: params, optimizer, data
    assert [(v["process_index"], v["process_count"], v["global_devices"], v["local_devices"]) for v in views] == [
        (0, 2, 2, 1), (1, 2, 2, 1)]
    _compare(reference, two, ("loss", "mlm_accuracy", "nsp_accuracy", "eval/loss", "eval/mlm_accuracy"))
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]


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
    _compare(reference, two, ("loss", "accuracy", "eval/accuracy"))
    assert (two / "best" / "jaxbert.json").is_file()
