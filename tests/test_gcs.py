"""gs:// everywhere, against a real GCS API (the emulator): pretraining with workdir and corpus in a bucket,
killed twice and resumed from it bit-identically; loading, converting, embedding and fine-tuning with
every path in the bucket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from finetune_fixtures import tiny_pretrained
from pretrain_runs import REPO, assert_same_run, run_to_end, start

import jaxbert
from jaxbert import storage
from jaxbert.cli import main
from jaxbert.formats import latest_complete_step

STEPS = 12
EVERY = 4


def _upload(local: Path, url: str) -> str:
    storage.copy_tree(local, url) if local.is_dir() else storage.path(local).copy(storage.path(url), overwrite=True)
    return url


def _wait_for_checkpoint(proc: subprocess.Popen, workdir: str, after: int | None, timeout: float = 600) -> int:
    """Wait until the run in `workdir` has committed a checkpoint newer than `after`; return its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            latest = latest_complete_step(workdir)
        except jaxbert.JaxbertError:
            latest = None  # checkpoints/ not there yet
        if latest is not None and (after is None or latest > after):
            return latest
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint after step {after} within {timeout}s")


@pytest.mark.slow
def test_pretraining_in_a_bucket_survives_two_sigkills_bit_identically(gcs_bucket, tmp_path):
    corpus = tmp_path / "corpus.txt"
    from jaxbert.data.python_docs import write_python_docs_corpus

    train_file, _ = write_python_docs_corpus(tmp_path / "docs")
    shutil.copy(train_file, corpus)
    local_args = (f"--config.data.corpus={corpus}", "--config.data.eval_corpus=")
    straight = tmp_path / "straight"
    assert run_to_end(straight, every=EVERY, steps=STEPS, extra=local_args)["step"] == STEPS

    # The same run with everything in the bucket: corpus, tokenizer (straight's, so the vocabulary is the
    # same) and workdir.
    gs_corpus = _upload(corpus, f"{gcs_bucket}/data/corpus.txt")
    _upload(straight / "tokenizer", f"{gcs_bucket}/vocab/tokenizer")
    workdir = f"{gcs_bucket}/runs/bert"
    gs_args = (f"--config.data.corpus={gs_corpus}", "--config.data.eval_corpus=")
    shared = f"{gcs_bucket}/vocab"
    seen = None
    for _ in range(2):  # killed right after its next checkpoint, twice
        proc = start(workdir, shared, EVERY, STEPS, gs_args)
        seen = _wait_for_checkpoint(proc, workdir, seen)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL
    assert seen is not None and seen < STEPS
    summary = run_to_end(workdir, shared, EVERY, STEPS, gs_args)
    assert summary["status"] == "finished" and summary["step"] == STEPS
    assert_same_run(straight, workdir, STEPS)  # params bit-identical, the same loss at every step, each logged once
    assert (storage.path(workdir) / "tensorboard").is_dir()

    # The bucket's workdir opens like a local one.
    model = jaxbert.load(workdir)
    local = jaxbert.load(straight)
    jax.tree_util.tree_map(np.testing.assert_array_equal, model.params, local.params)
    assert model.tokenizer.encode_batch(["a test sentence"]) == local.tokenizer.encode_batch(["a test sentence"])


def test_load_convert_and_embed_with_every_path_in_a_bucket(gcs_bucket, minilm_dir, tmp_path):
    hf = _upload(minilm_dir, f"{gcs_bucket}/models/minilm")
    texts = ["A sentence about cats.", "Another one, about the weather today."]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    gs_texts = _upload(tmp_path / "texts.txt", f"{gcs_bucket}/in/texts.txt")

    from_bucket = jaxbert.load(hf)
    reference = jaxbert.load(minilm_dir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, from_bucket.params, reference.params)
    expected = reference.embed(texts)
    np.testing.assert_allclose(from_bucket.embed(texts), expected, atol=1e-6)

    assert main(["convert", "--from", hf, "--to", f"{gcs_bucket}/bundle"]) == 0
    assert main(["convert", "--from", f"{gcs_bucket}/bundle", "--to", f"{gcs_bucket}/hf-again", "--format", "hf"]) == 0
    again = jaxbert.load(f"{gcs_bucket}/hf-again")
    jax.tree_util.tree_map(np.testing.assert_array_equal, again.params, reference.params)
    # The command never replaces a bundle that is already there.
    assert main(["convert", "--from", hf, "--to", f"{gcs_bucket}/bundle"]) == 1

    out = f"{gcs_bucket}/out/emb.npy"
    assert main(["embed", "--model", f"{gcs_bucket}/bundle", "--input", gs_texts, "--output", out]) == 0
    with storage.path(out).open("rb") as f:
        np.testing.assert_allclose(np.load(f), expected, atol=1e-5)


@pytest.mark.slow
def test_finetuning_with_data_init_and_workdir_in_a_bucket(gcs_bucket, minilm_dir, shared_data, tmp_path):
    rows = (shared_data / "glue" / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.tsv").write_text("\n".join(rows[:97]) + "\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[:1] + rows[97:129]) + "\n", encoding="utf-8")
    data = _upload(tmp_path / "train.tsv", f"{gcs_bucket}/glue/sst2/train.tsv")
    dev = _upload(tmp_path / "dev.tsv", f"{gcs_bucket}/glue/sst2/dev.tsv")
    init = f"{gcs_bucket}/models/tiny"
    tiny_pretrained(minilm_dir).save(init)  # a bundle written straight to the bucket
    workdir = f"{gcs_bucket}/runs/sst2"
    out = subprocess.run(
        [sys.executable, "-m", "jaxbert.cli", "finetune", "--config", "configs/finetune/sst2.py", "--workdir", workdir,
         f"--config.init={init}", f"--config.data.train={data}", f"--config.data.eval={dev}",
         "--config.train.steps=4", "--config.train.batch_size=16", "--config.train.seq_len=32",
         "--config.train.eval_every=2", "--config.train.progress=false"],
        capture_output=True, text=True, timeout=900, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["eval_examples"] == 32 and summary["best_step"] in (2, 4)
    assert summary["eval_source"] == dev
    best = jaxbert.load(workdir)  # a fine-tuning workdir in a bucket: its best model
    assert best.config.task == "classification" and best.task_info["step"] == summary["best_step"]
    # `jaxbert eval` of the bucket's workdir on the bucket's eval file reproduces the best model's score.
    scores = json.loads(subprocess.run(
        [sys.executable, "-m", "jaxbert.cli", "eval", "--model", workdir, "--task", "sst2", "--data", dev],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env={**os.environ, "JAX_PLATFORMS": "cpu"}).stdout.strip().splitlines()[-1])
    assert scores["examples"] == 32 and scores["accuracy"] == pytest.approx(summary["best"]["accuracy"], abs=1e-6)


@pytest.mark.slow
def test_vocab_pretraining_phases_and_distillation_read_and_write_the_bucket(gcs_bucket, tmp_path):
    from jaxbert.data.python_docs import write_python_docs_corpus
    from jaxbert.train.metrics import read_metrics

    train_file, eval_file = write_python_docs_corpus(tmp_path / "docs")
    lines = Path(train_file).read_text(encoding="utf-8").split("\n\n")[:150]  # a few hundred sentences
    (tmp_path / "small.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    corpus = _upload(tmp_path / "small.txt", f"{gcs_bucket}/data/train.txt")
    held_out = _upload(Path(eval_file), f"{gcs_bucket}/data/eval.txt")
    config = _upload(REPO / "configs/smoke/bert.py", f"{gcs_bucket}/configs/bert.py")
    b = gcs_bucket

    assert main(["vocab", "--corpus", corpus, "--kind", "wordpiece", "--size", "400", "--out", f"{b}/vocab"]) == 0
    assert (storage.path(b) / "vocab" / "vocab.txt").is_file()
    common = ["--config.train.steps=2", "--config.train.batch_size=8", "--config.checkpoint.every=2",
              "--config.train.log_every=1", "--config.train.eval_every=2", "--config.train.progress=false",
              f"--config.data.corpus={corpus}"]
    # Phase 1: the config file, corpus, held-out text, vocabulary and workdir all in the bucket.
    assert main(["pretrain", "--config", config, "--workdir", f"{b}/p1", f"--config.data.eval_corpus={held_out}",
                 f"--config.data.tokenizer={b}/vocab", *common]) == 0
    assert any("eval/mlm_accuracy" in row for row in read_metrics(f"{b}/p1"))
    # Phase 2 starts from phase 1 in the bucket (config.init); at a vanishing learning rate it ends where
    # phase 1 did, which shows every parameter came from there. The vocabulary is phase 1's.
    assert main(["pretrain", "--config", config, "--workdir", f"{b}/p2", f"--config.init={b}/p1",
                 "--config.data.eval_corpus=", "--config.train.lr=1e-12", "--config.train.warmup_steps=0",
                 *common]) == 0
    p1, p2 = jaxbert.load(f"{b}/p1"), jaxbert.load(f"{b}/p2")
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-6), p1.params, p2.params)
    assert (storage.path(b) / "p2" / "tokenizer" / "vocab.txt").read_text() == \
        (storage.path(b) / "vocab" / "vocab.txt").read_text()
    # Distillation from the bucket's teacher into the bucket: the student starts from the teacher's layers
    # (its student-init bundle is written there too) and uses the teacher's tokenizer.
    assert main(["distill", "--config", str(REPO / "configs/smoke/distilbert.py"), "--workdir", f"{b}/student",
                 f"--config.objective.teacher={b}/p1", "--config.data.eval_corpus=", *common]) == 0
    student = jaxbert.load(f"{b}/student")
    assert student.config.family == "distilbert" and student.config.vocab_size == p1.config.vocab_size
    assert (storage.path(b) / "student" / "student-init" / "jaxbert.json").is_file()
    assert student.tokenizer.encode_batch(["def f(x): return x"]) == p1.tokenizer.encode_batch(["def f(x): return x"])
