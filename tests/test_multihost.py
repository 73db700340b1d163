"""Two real processes joined by jax.distributed (gloo on CPU) against one process with the same two devices:
the same losses, eval figures and final params, for pretraining and for fine-tuning."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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


def _run(num_processes: int, args: list[str]) -> list[dict]:
    """Run the command in `num_processes` processes at once; every process's JSON view."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(PROBE), str(num_processes), str(i), port, *args], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(num_processes)]
    views = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        views.append(json.loads(out.strip().splitlines()[-1]))
    assert all(v["rc"] == 0 for v in views), views
    return views


def _rows(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _compare(reference: Path, two: Path, keys: tuple[str, ...]) -> None:
    ref_rows, two_rows = _rows(reference), _rows(two)
    assert [r["step"] for r in two_rows] == [r["step"] for r in ref_rows]  # written once, by process 0
    for a, b in zip(ref_rows, two_rows, strict=True):
        for key in keys:
            if key in a:
                assert abs(a[key] - b[key]) < 1e-5, (a["step"], key, a[key], b[key])
    pa, pb = jaxbert.load(reference).params, jaxbert.load(two).params
    diffs = jax.tree_util.tree_map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), pa, pb)
    assert max(jax.tree_util.tree_leaves(diffs)) < 1e-5


def test_two_process_pretraining_equals_one_process(tmp_path):
    args = ["pretrain", "--config", "configs/smoke/bert.py", "--config.train.steps=6",
            "--config.train.batch_size=8", "--config.train.log_every=1", "--config.train.eval_every=6",
            "--config.train.eval_batches=2", "--config.checkpoint.every=3", "--config.train.progress=false",
            "--config.train.warmup_steps=0", "--config.data.vocab_size=500", "--config.model.hidden_dropout=0.0",
            "--config.model.attention_dropout=0.0"]
    reference, two = tmp_path / "one", tmp_path / "two"
    [view] = _run(1, [*args, "--workdir", str(reference)])
    assert view["process_count"] == 1 and view["global_devices"] == 2
    # The same vocabulary for both (WordPiece training breaks count ties at random).
    views = _run(2, [*args, "--workdir", str(two), f"--config.data.tokenizer={reference / 'tokenizer'}"])
    assert [(v["process_index"], v["process_count"], v["global_devices"], v["local_devices"]) for v in views] == [
        (0, 2, 2, 1), (1, 2, 2, 1)]
    _compare(reference, two, ("loss", "mlm_accuracy", "nsp_accuracy", "eval/loss", "eval/mlm_accuracy"))
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]


def test_two_process_finetuning_equals_one_process(tmp_path, shared_data, minilm_dir):
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
    _run(1, [*args, "--workdir", str(reference)])
    _run(2, [*args, "--workdir", str(two)])
    _compare(reference, two, ("loss", "accuracy", "eval/accuracy"))
    assert (two / "best" / "jaxbert.json").is_file()
