"""Every task type end to end on a tiny budget: `jaxbert finetune` → best model kept → `jaxbert eval` JSON →
`jaxbert.export_hf` → transformers loads it and gives the same logits and metrics.

The model is a tiny random BERT with MiniLM's real vocabulary; the data are small slices of the real
task files. Starting points cover a jaxbert bundle, a Hugging Face directory and a fine-tuning workdir.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

import jaxbert
from jaxbert import cli
from jaxbert.finetune.predict import predict_logits
from jaxbert.finetune.tasks import EncodeOptions, encode_task, get_task, read_task_file
from jaxbert.formats import BEST_DIR, read_task_info
from jaxbert.train.metrics import read_metrics
from tests.finetune_fixtures import conll_sentences, head_lines, squad_subset, tiny_pretrained

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = ["--config.train.steps=4", "--config.train.batch_size=8", "--config.train.log_every=2",
            "--config.train.progress=False", "--config.checkpoint.every=4", "--config.eval.batch_size=16"]
EVERY_2 = ("--config.train.eval_every=2",)  # two evaluations to choose the best from (else only the last step)


@pytest.fixture(scope="module")
def starts(minilm_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """The same tiny pretrained model as a jaxbert bundle and as a Hugging Face directory."""
    root = tmp_path_factory.mktemp("starts")
    model = tiny_pretrained(minilm_dir)
    return {"bundle": model.save(root / "bundle"), "hf": jaxbert.export_hf(model, root / "hf")}


def _run(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    assert len(lines) == 1, lines
    return json.loads(lines[-1])


def _finetune(task: str, workdir: Path, init: Path, train: Path, evaluation: Path, seq_len: int,
              extra: tuple[str, ...] = ()) -> dict:
    return _run(["finetune", "--config", str(REPO / "configs" / "finetune" / f"{task}.py"), "--workdir", str(workdir),
                 f"--config.init={init}", f"--config.data.train={train}", f"--config.data.eval={evaluation}",
                 f"--config.train.seq_len={seq_len}", *TINY_RUN, *extra])


def _hf_logits(directory: Path, kind: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    auto = {"classification": transformers.AutoModelForSequenceClassification,
            "regression": transformers.AutoModelForSequenceClassification,
            "span": transformers.AutoModelForQuestionAnswering,
            "token": transformers.AutoModelForTokenClassification}[kind]
    model, info = auto.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        out = model.eval()(**{k: torch.tensor(arrays[k]) for k in ("input_ids", "attention_mask", "token_type_ids")})
    return torch.stack([out.start_logits, out.end_logits], -1).numpy() if kind == "span" else out.logits.numpy()


def _check_run(task: str, workdir: Path, summary: dict, evaluation: Path, tmp_path: Path,
               eval_steps: tuple[int, ...] = (4,)) -> None:
    spec = get_task(task)
    # The best model is the one with the highest eval metric among the evaluations logged.
    evals = [r for r in read_metrics(workdir) if f"eval/{spec.metric}" in r]
    assert tuple(r["step"] for r in evals) == eval_steps
    best_row = max(evals, key=lambda r: r[f"eval/{spec.metric}"])
    info = read_task_info(workdir / BEST_DIR)
    assert summary["best_step"] == info["step"] == best_row["step"]
    assert info["value"] == pytest.approx(best_row[f"eval/{spec.metric}"])

    # jaxbert.load(workdir) is that best model; `jaxbert eval` on the eval file reproduces its metrics.
    model = jaxbert.load(workdir)
    assert model.config.task and model.config.heads == ()
    scores = _run(["eval", "--model", str(workdir), "--task", task, "--data", str(evaluation), "--batch-size", "16"])
    assert set(scores) == set(info["metrics"]) - {"best"}
    for key, value in scores.items():  # equal up to float32 rounding (eval batches differ in size)
        assert value == pytest.approx(info["metrics"][key], abs=1e-4), key

    # The exported transformers model gives the same logits, hence the same metrics.
    out = jaxbert.export_hf(model, tmp_path / "hf-export")
    examples = read_task_file(spec, evaluation)
    encoded = encode_task(examples, model.tokenizer, EncodeOptions(**info["settings"]))
    ours = predict_logits(model.config, model.params, encoded.arrays, 16)
    theirs = _hf_logits(out, spec.kind, encoded.arrays)
    real = encoded.arrays["attention_mask"].astype(bool)
    if spec.kind in ("span", "token"):
        np.testing.assert_allclose(ours[real], theirs[real], atol=1e-4, rtol=0)
        theirs = np.where(real[..., None], theirs, ours)  # padding scores nothing either way
    else:
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    for key, value in encoded.score(theirs).items():
        assert value == pytest.approx(scores[key], abs=1e-4), key


@pytest.fixture(scope="module")
def sst2_run(starts, shared_data: Path, tmp_path_factory) -> tuple[Path, dict, Path]:
    """SST-2 fine-tuned from the bundle: (workdir, the command's JSON summary, the dev file)."""
    root = tmp_path_factory.mktemp("sst2")
    src = shared_data / "glue" / "sst2" / "train.tsv"
    train, dev = head_lines(src, root / "train.tsv", 48), head_lines(src, root / "dev.tsv", 40, skip=48)
    return root / "run", _finetune("sst2", root / "run", starts["bundle"], train, dev, 32, EVERY_2), dev


def test_classification_end_to_end_from_a_bundle(sst2_run, tmp_path: Path) -> None:
    workdir, summary, dev = sst2_run
    assert summary["train_rows"] == 48 and summary["eval_examples"] == 40 and summary["eval_source"] == str(dev)
    _check_run("sst2", workdir, summary, dev, tmp_path, eval_steps=(2, 4))
    # an independent check of the metric: sklearn on the exported model's predictions
    from sklearn.metrics import accuracy_score

    model = jaxbert.load(workdir)
    assert model.label_names == ["negative", "positive"]
    enc = encode_task(read_task_file(get_task("sst2"), dev), model.tokenizer, EncodeOptions(max_length=32))
    hf_pred = _hf_logits(tmp_path / "hf-export", "classification", enc.arrays).argmax(-1)
    metrics = read_task_info(workdir / BEST_DIR)["metrics"]
    assert accuracy_score(enc.arrays["labels"], hf_pred) == pytest.approx(metrics["accuracy"])


@pytest.mark.slow
def test_regression_end_to_end_from_a_hugging_face_dir(starts, shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "glue" / "stsb" / "train.tsv"
    train, dev = head_lines(src, tmp_path / "train.tsv", 48), head_lines(src, tmp_path / "dev.tsv", 40, skip=48)
    summary = _finetune("stsb", tmp_path / "run", starts["hf"], train, dev, 32)
    assert set(summary["best"]) == {"pearson", "spearman", "examples"}
    _check_run("stsb", tmp_path / "run", summary, dev, tmp_path)
    from scipy.stats import spearmanr

    enc = encode_task(read_task_file(get_task("stsb"), dev), jaxbert.load(tmp_path / "run").tokenizer,
                      EncodeOptions(max_length=32))
    hf_scores = _hf_logits(tmp_path / "hf-export", "regression", enc.arrays)[:, 0]
    assert spearmanr(hf_scores, enc.arrays["labels"]).statistic == pytest.approx(summary["best"]["spearman"], abs=1e-5)


@pytest.mark.slow
def test_span_end_to_end_with_windows(starts, shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "squad" / "train-sample.json"
    train, dev = squad_subset(src, tmp_path / "train.json", 0, 4), squad_subset(src, tmp_path / "dev.json", 1, 3)
    summary = _finetune("squad_v1", tmp_path / "run", starts["bundle"], train, dev, 64,
                        ("--config.data.doc_stride=24", "--config.data.max_query_length=16"))
    assert set(summary["best"]) == {"exact_match", "f1", "examples"} and summary["eval_examples"] == 9
    _check_run("squad_v1", tmp_path / "run", summary, dev, tmp_path)


@pytest.mark.slow
def test_token_end_to_end_from_a_finetuning_workdir(sst2_run, shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "conll2003" / "train.txt"
    train, dev = conll_sentences(src, tmp_path / "train.txt", 40), conll_sentences(src, tmp_path / "dev.txt", 30, 40)
    # A fine-tuning workdir is a valid starting point too: the SST-2 run's best model gives the encoder.
    summary = _finetune("conll2003", tmp_path / "run", sst2_run[0], train, dev, 32)
    assert set(summary["best"]) >= {"entity_f1", "precision", "recall", "examples"}
    _check_run("conll2003", tmp_path / "run", summary, dev, tmp_path)
    assert jaxbert.load(tmp_path / "run").label_names[:3] == ["O", "B-PER", "I-PER"]
