"""End-to-end runs of the ELECTRA and distillation configs through the CLI (slow), plus the distill command's
fast checks. The slow runs print their loss curves: `pytest -m slow tests/test_smoke_electra_distill.py -s`."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import pytest

import jaxbert
from jaxbert.cli import main
from jaxbert.config import ConfigError
from jaxbert.pretrain.distill import run_distillation, use_teacher_tokenizer
from jaxbert.train.experiment import load_config

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--config.train.progress=false"]


def _train_rows(workdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r and not any(k.startswith("eval/") for k in r)]


def _assert_loss_falls(workdir: Path, *parts: str) -> list[dict]:
    rows = _train_rows(workdir)
    first, last = rows[0], rows[-5:]
    print(f"\n{workdir.name}: step {first['step']} loss {first['loss']:.3f} -> steps {last[0]['step']}-"
          f"{last[-1]['step']} mean loss {np.mean([r['loss'] for r in last]):.3f}; " + ", ".join(
              f"{p} {first[p]:.4f} -> {np.mean([r[p] for r in last]):.4f}" for p in parts))
    assert np.mean([r["loss"] for r in last]) < first["loss"]
    return rows


# ---- fast ------------------------------------------------------------------------------------------
def test_distill_rejects_a_non_distillation_objective(tmp_path):
    config = load_config(REPO / "configs/smoke/bert.py")
    with pytest.raises(ConfigError, match="objective.name"):
        run_distillation(config, tmp_path)


def test_teacher_tokenizer_becomes_the_runs_tokenizer(minilm_dir):
    config = ml_collections.ConfigDict({"objective": {"teacher": str(minilm_dir)}, "data": {"tokenizer": ""}})
    use_teacher_tokenizer(config)
    assert Path(config.data.tokenizer) == Path(minilm_dir)
    config = ml_collections.ConfigDict({"objective": {"teacher": str(minilm_dir)}, "data": {"tokenizer": "mine"}})
    use_teacher_tokenizer(config)
    assert config.data.tokenizer == "mine"  # an explicit choice wins


# ---- slow: the smoke configs end to end ------------------------------------------------------------
@pytest.mark.slow
def test_electra_smoke_run(tmp_path):
    workdir = tmp_path / "electra"
    assert main(["pretrain", "--config", str(REPO / "configs/smoke/electra.py"), "--workdir", str(workdir),
                 *QUIET]) == 0
    _assert_loss_falls(workdir, "mlm_loss", "rtd_loss", "disc_accuracy")
    model = jaxbert.load(workdir)
    assert model.config.family == "electra" and model.config.heads == ("rtd",)
    enc = model.tokenizer(["sort a list in place"], max_length=16, padding="max_length", truncation=True)
    out = model(enc["input_ids"], enc["attention_mask"])
    assert set(out.logits) == {"rtd"} and out.logits["rtd"].shape == (1, 16)


@pytest.mark.slow
def test_distilbert_smoke_run(tmp_path):
    workdir = tmp_path / "distilbert"
    assert main(["distill", "--config", str(REPO / "configs/smoke/distilbert.py"), "--workdir", str(workdir),
                 *QUIET]) == 0
    _assert_loss_falls(workdir, "mlm_loss", "ce_loss", "cos_loss")
    start = jaxbert.load(workdir / "student-init")
    model = jaxbert.load(workdir)
    assert model.config == start.config and model.config.family == "distilbert" and model.config.num_layers == 2
    assert model.tokenizer is not None and set(model(np.ones((1, 8), np.int32)).logits) == {"mlm"}


@pytest.mark.slow
def test_distilling_a_trained_bert_teacher(tmp_path):
    """A real teacher: the BERT smoke run (4 layers), then DistilBERT and Patient KD (2 layers) from its workdir."""
    teacher = tmp_path / "bert"
    assert main(["pretrain", "--config", str(REPO / "configs/smoke/bert.py"), "--workdir", str(teacher),
                 "--config.model.num_layers=4", *QUIET]) == 0
    student = tmp_path / "distil-from-bert"
    assert main(["distill", "--config", str(REPO / "configs/smoke/distilbert.py"), "--workdir", str(student),
                 f"--config.objective.teacher={teacher}", *QUIET]) == 0
    rows = _assert_loss_falls(student, "mlm_loss", "ce_loss", "cos_loss", "teacher_agreement")
    assert rows[0]["teacher_mlm_accuracy"] > 0.05  # the trained teacher predicts masked tokens
    assert np.mean([r["teacher_agreement"] for r in rows[-5:]]) > 0.2
    # The student's tokenizer is the teacher's.
    assert (student / "tokenizer").is_dir() and jaxbert.load(student).tokenizer.vocab_size == \
        jaxbert.load(teacher).tokenizer.vocab_size
    pkd = tmp_path / "pkd-from-bert"
    assert main(["distill", "--config", str(REPO / "configs/smoke/distilbert.py"), "--workdir", str(pkd),
                 f"--config.objective.teacher={teacher}", "--config.objective.name=pkd", "--config.model.family=bert",
                 "--config.model.type_vocab_size=2", "--config.train.steps=200", *QUIET]) == 0
    _assert_loss_falls(pkd, "task_loss", "kd_loss", "pt_loss")


# ---- starting ELECTRA from a trained model (config.init) --------------------------------------------
@pytest.mark.slow
def test_electra_init_keeps_a_workdirs_generator_and_completes_a_bare_discriminator(tmp_path):
    import jax

    from jaxbert.formats import load_training_params, open_model
    from jaxbert.objectives.base import build_objective
    from jaxbert.train.experiment import apply_overrides

    corpus = tmp_path / "corpus.txt"
    corpus.write_text((REPO / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    short = [f"--config.data.corpus={corpus}", "--config.data.eval_corpus=", "--config.data.vocab_size=400",
             "--config.train.batch_size=4", "--config.train.log_every=1", "--config.checkpoint.every=2",
             "--config.train.warmup_steps=0", *QUIET]
    first = tmp_path / "first"
    assert main(["pretrain", "--config", str(REPO / "configs/smoke/electra.py"), "--workdir", str(first),
                 "--config.train.steps=2", *short]) == 0
    _, trained = load_training_params(first)
    bundle = tmp_path / "discriminator"
    jaxbert.load(first).save(bundle)  # the exported model only: no generator in it

    config = apply_overrides(load_config(REPO / "configs/smoke/electra.py"), short[:-1])
    config.model.vocab_size = 400
    objective = build_objective(config, jaxbert.load(first).tokenizer)
    # The loop records ELECTRA's parts: the trained generator opens by name, on the shared embeddings.
    assert jaxbert.load(first, part="generator").config == objective.generator_config
    same = lambda a, b: all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.array_equal, a, b)))

    rng = jax.random.key(int(config.seed))
    resumed = objective.initial_params(open_model(first), rng)
    assert same(resumed, trained)  # both models, generator included

    completed = objective.initial_params(open_model(bundle), rng)
    assert same(completed["discriminator"], trained["discriminator"])
    assert jax.tree_util.tree_map(np.shape, completed["generator"]) == jax.tree_util.tree_map(
        np.shape, trained["generator"])
    assert not same(completed["generator"], trained["generator"])  # fresh, not copied from elsewhere

    second = tmp_path / "second"
    assert main(["pretrain", "--config", str(REPO / "configs/smoke/electra.py"), "--workdir", str(second),
                 "--config.train.steps=2", f"--config.init={bundle}", *short]) == 0
    assert [r["step"] for r in _train_rows(second)] == [1, 2]
