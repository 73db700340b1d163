"""Chinese BERT end to end: the chinese_wwm experiment at toy size, and the CLI pipeline (pretrain the Chinese
smoke config, fine-tune zh_ner and zh_sentiment from its workdir, `jaxbert eval` both)."""

from __future__ import annotations

import json

import pytest

from jaxbert import cli
from jaxbert.train.experiment import apply_overrides, load_config


@pytest.mark.slow
def test_chinese_wwm_experiment_runs_end_to_end_at_toy_size(shared_data, tmp_path, capsys):
    from jaxbert.experiments.chinese_wwm import run_experiment

    config = load_config("configs/experiments/chinese_wwm.py")
    apply_overrides(config, [
        f"--config.data.peoples_daily={shared_data}/zh/peoples_daily/199801-train.txt",
        f"--config.data.sentiment={shared_data}/zh/sentiment/train.tsv",
        "--config.data.train_lines=150", "--config.data.heldout_start=150", "--config.data.heldout_end=220",
        "--config.data.ner_train=64", "--config.data.ner_eval=32", "--config.data.sentiment_train=64",
        "--config.data.sentiment_eval=32", "--config.pretrain.steps=4", "--config.pretrain.batch_size=8",
        "--config.pretrain.seq_len=64", "--config.pretrain.hidden=32", "--config.pretrain.vocab_size=1500",
        "--config.pretrain.limit_alphabet=1200", "--config.pretrain.eval_batches=2", "--config.finetune.epochs=1",
        "--config.finetune.batch_size=16", "--config.finetune.seq_len=64"])
    results = run_experiment(config, tmp_path)
    assert set(results["models"]) == {"char", "wwm"}
    for row in results["models"].values():
        for key in ("mlm_accuracy_char_masks", "mlm_accuracy_wwm_masks", "zh_ner_entity_f1", "zh_sentiment_accuracy"):
            assert 0.0 <= row[key] <= 1.0, key
    # The two runs read one dataset and one vocabulary: only the masking differed.
    assert len(list((tmp_path / "datasets").iterdir())) == 2  # train and eval
    assert json.loads((tmp_path / "results.json").read_text())["models"] == results["models"]
    assert "| wwm |" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_pretrain_chinese_smoke_then_finetune_both_tasks_then_eval(shared_data, tmp_path, capsys):
    pd = shared_data / "zh/peoples_daily/199801-train.txt"
    lines = pd.read_text("utf-8").splitlines()
    small = tmp_path / "pd-small.txt"
    small.write_text("\n".join(lines[:1500]) + "\n", encoding="utf-8")
    held = tmp_path / "pd-held.txt"
    held.write_text("\n".join(lines[-300:]) + "\n", encoding="utf-8")
    pre = tmp_path / "pre"
    assert cli.main(["pretrain", "--config", "configs/smoke/bert_zh.py", "--workdir", str(pre),
                     f"--config.data.corpus={small}", "--config.train.steps=60"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 60
    stored = json.loads(next((pre / "data").glob("train-*/jaxbert_pretraining.json")).read_text())
    assert "word_starts" in stored["fields"]  # the PKU words went into the data
    for task, config, data, metric in (
            ("zh_ner", "configs/finetune/zh_ner.py", held, "entity_f1"),
            ("zh_sentiment", "configs/finetune/zh_sentiment.py", shared_data / "zh/sentiment/train.tsv", "accuracy")):
        work = tmp_path / task
        overrides = [f"--config.init={pre}", "--config.train.steps=40", "--config.data.max_train_examples=640",
                     "--config.data.max_eval_examples=128"]
        if task == "zh_ner":
            overrides.append(f"--config.data.train={small}")
        assert cli.main(["finetune", "--config", config, "--workdir", str(work), *overrides]) == 0
        capsys.readouterr()
        assert cli.main(["eval", "--model", str(work), "--task", task, "--data", str(data),
                         "--max-examples", "200"]) == 0
        metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert metrics["examples"] == 200 and 0.0 <= metrics[metric] <= 1.0
        if task == "zh_sentiment":
            assert metrics["accuracy"] > 0.5  # better than chance after 40 steps from the pretrained model
