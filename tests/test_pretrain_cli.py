"""`jaxbert pretrain`: config overrides, one-line config errors before compiling, and end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import pytest

from jaxbert.checks import validate_experiment
from jaxbert.cli import main
from jaxbert.config import ConfigError
from jaxbert.train.experiment import apply_overrides, load_config, pretrain_config
from jaxbert.train.metrics import read_metrics

SMOKE = "configs/smoke/bert.py"
REPO = Path(__file__).resolve().parents[1]


def test_overrides_are_typed_by_the_field_they_replace():
    c = pretrain_config("bert-base")
    apply_overrides(c, ["--config.train.lr=3e-4", "--config.train.steps=10", "--config.train.progress=false",
                        "--config.data.corpus=a.txt,b.txt", "--config.mesh.fsdp=4", "--config.model.num_layers=2",
                        "--config.objective.pair_task=sop", "--config.train.steps=1e3"])
    assert c.train.lr == 3e-4 and isinstance(c.train.lr, float)
    assert c.train.steps == 1000 and isinstance(c.train.steps, int)
    assert c.train.progress is False and c.data.corpus == ("a.txt", "b.txt") and c.mesh.fsdp == 4
    assert c.model.to_dict() == {"preset": "bert-base", "num_layers": 2}
    assert c.objective.pair_task == "sop"
    apply_overrides(c, ["--config.model=roberta-base", "--config.data.corpus=['x.txt']"])
    assert c.model == "roberta-base" and c.data.corpus == ("x.txt",)
    apply_overrides(c, ["--config.data.eval_corpus="])  # an empty value clears a list
    assert c.data.eval_corpus == ()


@pytest.mark.parametrize("override, message", [
    ("--config.train.lrr=1", "config.train.lrr: no such key"),
    ("--config.trian.lr=1", "config.trian: no such key"),
    ("--config.train.steps=ten", "config.train.steps: cannot read 'ten' as a int"),
    ("--config.model.layers=2", "config.model.layers: ModelConfig has no such field"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(pretrain_config(), [override])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def _valid() -> ml_collections.ConfigDict:
    c = load_config(SMOKE)
    return c


@pytest.mark.parametrize("override, devices, field", [
    ("--config.train.lr=-0.001", 1, "config.train.lr"),
    ("--config.train.batch_size=12", 8, "config.train.batch_size"),  # 12 over data-parallel 8
    ("--config.train.grad_accum=5", 1, "config.train.batch_size"),  # 32 not divisible by 5
    ("--config.objective.name=bogus", 1, "config.objective.name"),
    ("--config.train.seq_len=200", 1, "config.train.seq_len"),  # the smoke model has 128 positions
    ("--config.objective.max_predictions=100", 1, "config.objective.max_predictions"),
    ("--config.train.optimizer=sgd", 1, "config.train.optimizer"),
    ("--config.train.nan_policy=ignore", 1, "config.train.nan_policy"),
    ("--config.checkpoint.every=0", 1, "config.checkpoint.every"),
    ("--config.mesh.tensor=3", 8, "config.mesh"),
    ("--config.phase=phase2", 1, "config.init"),
    ("--config.model.hidden_size=101", 1, "ModelConfig.hidden_size"),  # not divisible by 2 heads
])
def test_bad_config_values_fail_before_compiling_naming_the_field(override, devices, field):
    c = apply_overrides(_valid(), [override])
    with pytest.raises(ConfigError) as err:
        validate_experiment(c, devices)
    assert str(err.value).startswith(field) and "\n" not in str(err.value), str(err.value)


def test_cli_prints_one_line_for_a_bad_config(tmp_path, capsys):
    rc = main(["pretrain", "--config", SMOKE, "--workdir", str(tmp_path / "w"), "--config.train.lr=-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith("jaxbert pretrain: error: config.train.lr: must be a positive")
    assert not (tmp_path / "w").exists()  # nothing was written
    rc = main(["pretrain", "--config", str(tmp_path / "missing.py"), "--workdir", str(tmp_path / "w")])
    assert rc == 1 and "--config: no config file" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--workdir=s3://bucket/run", "--config.init=s3://bucket/phase1",
                                  "--config.data.corpus=hdfs://namenode/wiki"])
def test_unsupported_url_schemes_are_refused_before_anything_is_written(flag, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pathlib would have made a local folder "s3:" here
    args = ["pretrain", "--config", str(REPO / SMOKE)]
    args += [flag] if flag.startswith("--workdir") else ["--workdir", str(tmp_path / "w"), flag]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"jaxbert pretrain: error: {flag}: unsupported URL scheme") and len(err) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_missing_bucket_is_named_by_its_flag_in_every_command(gcs_emulator, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "--from", str(tmp_path / "m"), "--to", "gs://no-such-bucket/hf"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxbert convert: error: --to gs://no-such-bucket/hf: bucket "
                                               "gs://no-such-bucket does not exist")
    assert main(["pretrain", "--config", str(REPO / SMOKE), "--workdir", str(tmp_path / "w"),
                 "--config.data.corpus=gs://no-such-bucket/wiki.txt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config.data.corpus gs://no-such-bucket/wiki.txt: bucket" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_every_shipped_config_is_valid():
    for name in ("pretrain/bert_base.py", "pretrain/bert_large.py", "pretrain/roberta_base.py",
                 "pretrain/albert_base.py", "pretrain/albert_xxlarge.py", "smoke/bert.py", "smoke/roberta.py",
                 "smoke/albert.py", "smoke/bert_zh.py", "pretrain/bert_zh_wwm.py"):
        c = load_config(f"configs/{name}")
        for key in ("model", "seed", "data", "train", "checkpoint", "mesh"):
            assert key in c, (name, key)
        for key in ("corpus",):
            assert key in c.data
        for key in ("steps", "batch_size", "seq_len", "lr"):
            assert key in c.train
        assert "every" in c.checkpoint
        validate_experiment(c, 8)
    phase2 = load_config("configs/pretrain/bert_base.py:phase2")
    assert phase2.train.seq_len == 512 and phase2.objective.max_predictions == 80


def small_corpus(directory) -> tuple[str, str]:
    """The Python help topics alone (a quarter of the smoke corpus): train and eval files."""
    from jaxbert.data.python_docs import topic_documents

    docs = topic_documents()
    paths = []
    for name, part in (("train.txt", docs[:-8]), ("eval.txt", docs[-8:])):
        (directory / name).write_text("\n\n".join("\n".join(d) for d in part) + "\n")
        paths.append(str(directory / name))
    return paths[0], paths[1]


def test_short_pretraining_run_end_to_end_then_load(tmp_path, capsys):
    import jaxbert

    workdir = tmp_path / "run"
    train_file, eval_file = small_corpus(tmp_path)
    args = ["pretrain", "--config", SMOKE, "--workdir", str(workdir), "--config.train.steps=30",
            f"--config.data.corpus={train_file}", f"--config.data.eval_corpus={eval_file}",
            "--config.train.batch_size=16", "--config.train.log_every=10", "--config.train.eval_every=30",
            "--config.train.eval_batches=2", "--config.checkpoint.every=15", "--config.train.progress=false",
            "--config.data.vocab_size=600"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 30 and "eval/mlm_accuracy" in summary
    rows = read_metrics(workdir)
    assert [r["step"] for r in rows if "loss" in r] == [10, 20, 30]
    assert [r["step"] for r in rows if "eval/loss" in r] == [30]
    assert {"mlm_accuracy", "nsp_accuracy", "learning_rate", "grad_norm", "tokens_per_s"} <= set(rows[0])

    model = jaxbert.load(workdir)
    assert model.config.vocab_size == 600 == model.tokenizer.vocab_size
    assert model.config.heads == ("mlm", "nsp")
    out = model(model.tokenizer(["the for statement"], max_length=16)["input_ids"])
    assert out.logits["mlm"].shape == (1, 16, 600)

    # The same command again: the run is complete, nothing is retrained.
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["step"] == 30 and len(read_metrics(workdir)) == len(rows)


@pytest.mark.slow
def test_corpus_reading_options_reach_vocabulary_and_dataset(tmp_path):
    """data.text_field and data.encoding_errors apply to the vocabulary trainer and the dataset builder alike."""
    from jaxbert.data.corpus import CorpusError
    from jaxbert.data.python_docs import topic_documents
    from jaxbert.data.tfds_builder import read_dataset_meta
    from jaxbert.pretrain.datasets import prepare_datasets
    from jaxbert.pretrain.tokenizer import fit_model_to_tokenizer, prepare_tokenizer

    docs = topic_documents()[:40]
    lines = [json.dumps({"body": "\n".join(d)}).encode() for d in docs]
    lines[3] = lines[3][:-2] + b" caf\xe9" + lines[3][-2:]  # a latin-1 byte inside the JSON string
    corpus = tmp_path / "docs.jsonl"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    config = apply_overrides(_valid(), [f"--config.data.corpus={corpus}", "--config.data.vocab_size=400",
                                        "--config.data.text_field=body"])
    with pytest.raises(CorpusError, match=r"docs\.jsonl, line 4: invalid UTF-8 .*encoding_errors=replace"):
        prepare_tokenizer(config, tmp_path / "strict")
    config.data.encoding_errors = "replace"
    tokenizer = prepare_tokenizer(config, tmp_path / "run")
    fit_model_to_tokenizer(config, tokenizer)
    train_dir, eval_dir = prepare_datasets(config, tmp_path / "run", tokenizer)  # eval: the smoke text corpus
    meta = read_dataset_meta(train_dir)
    assert tokenizer.vocab_size == 400 and eval_dir is not None and meta["options"]["text_field"] == "body"
    assert meta["summary"]["corpus"]["documents"] == 40 and meta["summary"]["corpus"]["replaced_lines"] == 1


def _smoke(family: str, workdir, capsys) -> list[dict]:
    assert main(["pretrain", "--config", f"configs/smoke/{family}.py", "--workdir", str(workdir),
                 "--config.train.progress=false"]) == 0
    capsys.readouterr()
    return [r for r in read_metrics(workdir) if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("family, pair", [("bert", "nsp"), ("roberta", None), ("albert", "sop")])
def test_smoke_config_loss_falls_and_mlm_accuracy_rises(family, pair, tmp_path, capsys):
    rows = _smoke(family, tmp_path, capsys)
    first, last = rows[:3], rows[-3:]
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
    print(json.dumps({"family": family, "curve": [(r["step"], round(r["loss"], 3), round(r["mlm_accuracy"], 3))
                                                  for r in rows]}))
    assert mean(last, "loss") < mean(first, "loss") - 0.5
    assert mean(last, "mlm_accuracy") > mean(first, "mlm_accuracy") + 0.03
    evals = [r for r in read_metrics(tmp_path) if "eval/loss" in r]
    assert evals and evals[-1]["eval/mlm_accuracy"] > 0.05
    import jaxbert

    model = jaxbert.load(tmp_path)
    assert model.config.family == family and (pair is None or pair in model.config.heads)


@pytest.mark.slow
def test_phase_two_starts_from_phase_one_weights_and_vocabulary(tmp_path, capsys):
    import numpy as np

    import jaxbert

    common = ["--config.train.batch_size=16", "--config.train.eval_every=0", "--config.train.progress=false",
              "--config.data.vocab_size=600", "--config.train.log_every=1"]
    phase1, phase2 = tmp_path / "p1", tmp_path / "p2"
    assert main(["pretrain", "--config", SMOKE, "--workdir", str(phase1), "--config.train.steps=60",
                 "--config.checkpoint.every=60", *common]) == 0
    assert main(["pretrain", "--config", SMOKE, "--workdir", str(phase2), "--config.train.steps=2",
                 "--config.checkpoint.every=2", "--config.phase=phase2", f"--config.init={phase1}",
                 "--config.train.seq_len=128", "--config.objective.max_predictions=20", *common]) == 0
    capsys.readouterr()
    assert (phase2 / "tokenizer" / "vocab.txt").read_text() == (phase1 / "tokenizer" / "vocab.txt").read_text()
    first = [r for r in read_metrics(phase1) if "loss" in r]
    second = [r for r in read_metrics(phase2) if "loss" in r]
    # Phase 2's first step already has phase 1's trained loss level, far below a fresh model's.
    assert second[0]["mlm_loss"] < first[0]["mlm_loss"] - 0.5
    a, b = jaxbert.load(phase1), jaxbert.load(phase2)
    assert a.config == b.config
    assert not np.array_equal(a.params["pooler"]["dense"]["kernel"], b.params["pooler"]["dense"]["kernel"])
