"""`jaxbert distill` end to end: Patient KD on a labelled GLUE file (toy size here; the real comparison on
SST-2 with MiniLM is slow), and DistilBERT's frequency-smoothed masking counting the training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.cli import main
from jaxbert.config import ModelConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from finetune_fixtures import head_lines  # noqa: E402

QUIET = "--config.train.progress=false"
TINY = ModelConfig(vocab_size=30522, hidden_size=16, num_layers=4, num_heads=2, intermediate_size=32,
                   max_position_embeddings=64, hidden_dropout=0.0, attention_dropout=0.0)


def _flat(tree) -> dict[str, np.ndarray]:
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sst2_files(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sst2")
    src = shared_data / "glue/sst2/train.tsv"
    return head_lines(src, root / "train.tsv", 48), head_lines(src, root / "dev.tsv", 24, skip=5000)


@pytest.mark.slow
def test_pkd_on_a_glue_file_from_the_cli(minilm_dir, sst2_files, tmp_path, capsys):
    """A (random) 4-layer classifier teacher, a 2-layer student from the first layers of a 'pretrained' model:
    the task's metric is reported, the best student kept, and WORKDIR/student-init is the baseline's start."""
    teacher_cfg = TINY.replace(task="classification", num_labels=2, heads=())
    teacher = jaxbert.init(teacher_cfg, seed=1, tokenizer=minilm_dir)
    teacher.save(tmp_path / "teacher")
    pretrained = jaxbert.init(TINY, seed=2, tokenizer=minilm_dir)
    pretrained.save(tmp_path / "pretrained")
    train, dev = sst2_files
    workdir = tmp_path / "pkd"
    assert main(["distill", "--config", str(REPO / "configs/distill/pkd.py"), "--workdir", str(workdir),
                 f"--config.objective.teacher={tmp_path / 'teacher'}",
                 f"--config.objective.student_init={tmp_path / 'pretrained'}", "--config.model.num_layers", "2",
                 f"--config.data.train={train}", f"--config.data.eval={dev}", "--config.train.steps=3",
                 "--config.train.batch_size=8", "--config.train.seq_len=32", "--config.train.log_every=1",
                 QUIET]) == 0
    summary = _summary(capsys)
    assert summary["task"] == "sst2" and summary["step"] == 3 and summary["eval_examples"] == 24
    assert 0.0 <= summary["final"]["accuracy"] <= 1.0 and summary["best_step"] == 3
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert {"task_loss", "kd_loss", "pt_loss", "accuracy"} <= set(train_rows[0])  # student layer 1 ~ teacher layer 2
    assert any("eval/accuracy" in r for r in rows)
    # The start: pretrained layers 0, 1 and embeddings, a fresh classifier (the pretrained model has none).
    start = jaxbert.load(workdir / "student-init")
    assert start.config.num_layers == 2 and start.config.task == "classification" and start.config.hidden_size == 16
    s, src = _flat(start.params), _flat(pretrained.params)
    np.testing.assert_array_equal(s["embeddings/word/embedding"], src["embeddings/word/embedding"])
    np.testing.assert_array_equal(s["encoder/layers/attention/query/kernel"],
                                  src["encoder/layers/attention/query/kernel"][:2])
    assert "task_head/out/kernel" in s
    best = jaxbert.load(workdir)  # the best student, with the teacher's tokenizer
    assert best.config == start.config and best.tokenizer is not None
    assert main(["eval", "--model", str(workdir), "--task", "sst2", "--data", str(dev)]) == 0
    assert _summary(capsys)["examples"] == 24


def test_pkd_on_a_task_needs_a_fine_tuned_teacher(minilm_dir, sst2_files, tmp_path, capsys):
    train, dev = sst2_files
    args = ["distill", "--config", str(REPO / "configs/distill/pkd.py"), "--workdir", str(tmp_path / "w"),
            f"--config.data.train={train}", QUIET]
    assert main(args) == 1 and "needs a teacher fine-tuned on it" in capsys.readouterr().err
    assert main([*args, f"--config.objective.teacher={minilm_dir}"]) == 1
    err = capsys.readouterr().err
    assert "fine-tune the teacher on sst2 first" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_distilbert_counts_the_training_tokens_for_smoothed_masking(tmp_path, capsys):
    """mask_smoothing > 0 and no token_counts: the run counts its dataset's token ids once (token_counts.npy)."""
    from jaxbert.data.tfds_builder import read_dataset_meta

    corpus = tmp_path / "corpus.txt"
    corpus.write_text((REPO / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    workdir = tmp_path / "distil"
    assert main(["distill", "--config", str(REPO / "configs/smoke/distilbert.py"), "--workdir", str(workdir),
                 f"--config.data.corpus={corpus}", "--config.data.eval_corpus=", "--config.data.vocab_size=400",
                 "--config.train.batch_size=4", "--config.train.steps=2", "--config.checkpoint.every=2",
                 "--config.train.warmup_steps=0", "--config.objective.mask_smoothing=0.7", QUIET]) == 0
    counts = np.load(workdir / "token_counts.npy")
    tokenizer = jaxbert.load_tokenizer(workdir / "tokenizer")
    data_dir = next((workdir / "data").glob("train-*"))
    summary = read_dataset_meta(data_dir)["summary"]["examples"]
    assert counts.shape == (tokenizer.vocab_size,)
    assert counts.sum() == summary["tokens"]  # every real token of every example, once
    assert counts[tokenizer.special.cls] == summary["examples"]  # one [CLS] per example
    config = json.loads((workdir / "config.json").read_text())
    assert config["objective"]["token_counts"] == str(workdir / "token_counts.npy")


@pytest.mark.slow
def test_pkd_beats_fine_tuning_the_same_student_on_sst2(minilm_dir, tmp_path):
    """The must-show: MiniLM (6 layers) fine-tuned on SST-2, a 2-layer student distilled with PKD from the CLI
    vs. the same student (the same start) fine-tuned alone, equal steps, data and learning rate."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pkd_sst2 import experiment

    result = experiment(tmp_path / "pkd-sst2", minilm_dir)
    print("\n" + json.dumps(result))
    assert result["teacher_accuracy"] > result["pkd_accuracy"] > result["finetune_accuracy"]
