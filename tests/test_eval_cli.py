"""`jaxbert eval` prints one JSON line of the task's metrics (checked against sklearn / scipy / seqeval on the
same predictions), and bad task data stops `jaxbert eval` and `jaxbert finetune` with one line naming the
file and line or question id, or is skipped and counted when asked."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert import cli
from jaxbert.data.conll import STANDARD_TAGS, predictions_to_words, read_conll
from jaxbert.finetune.predict import predict_logits
from jaxbert.finetune.tasks import EncodeOptions, encode_task, get_task, read_task_file
from jaxbert.model import param_shapes
from jaxbert.objectives.finetune import task_model_config
from tests.finetune_fixtures import TINY_BERT, conll_sentences, head_lines, squad_subset

REPO = Path(__file__).resolve().parents[1]


def _task_bundle(directory: Path, tokenizer_dir: Path, kind: str, labels: int, seed: int) -> Path:
    """A tiny random task model saved as a bundle (no training needed to test evaluation)."""
    config = task_model_config(TINY_BERT, kind, labels)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda s: rng.normal(0.0, 0.5, s.shape).astype(np.float32), param_shapes(config))
    return jaxbert.Pretrained(config, params, tokenizer_dir=tokenizer_dir).save(directory)


@pytest.fixture(scope="module")
def models(minilm_dir: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"sst2": _task_bundle(root / "sst2", minilm_dir, "classification", 2, 0),
            "stsb": _task_bundle(root / "stsb", minilm_dir, "regression", 1, 1),
            "squad_v1": _task_bundle(root / "squad", minilm_dir, "span", 2, 2),
            "conll2003": _task_bundle(root / "conll", minilm_dir, "token", 9, 3)}


def _cli(argv: list[str], capsys) -> tuple[int, list[str], list[str]]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, [x for x in out.out.splitlines() if x.strip()], [x for x in out.err.splitlines() if x.strip()]


def _eval(capsys, model: Path, task: str, data: Path, *extra: str) -> dict:
    code, out, err = _cli(["eval", "--model", str(model), "--task", task, "--data", str(data), *extra], capsys)
    assert code == 0, err
    assert len(out) == 1, out  # exactly one JSON line
    return json.loads(out[0])


def _logits(model_dir: Path, task: str, data: Path, max_length: int) -> tuple[np.ndarray, object]:
    model = jaxbert.load(model_dir)
    examples = read_task_file(get_task(task), data)
    encoded = encode_task(examples, model.tokenizer, EncodeOptions(max_length=max_length))
    return predict_logits(model.config, model.params, encoded.arrays), encoded


def test_classification_json_equals_sklearn(models, shared_data: Path, tmp_path: Path, capsys) -> None:
    from sklearn.metrics import accuracy_score

    data = head_lines(shared_data / "glue" / "sst2" / "train.tsv", tmp_path / "sst2.tsv", 60)
    scores = _eval(capsys, models["sst2"], "sst2", data)
    assert set(scores) == {"accuracy", "examples"} and scores["examples"] == 60
    logits, encoded = _logits(models["sst2"], "sst2", data, 128)
    assert scores["accuracy"] == pytest.approx(accuracy_score(encoded.arrays["labels"], logits.argmax(-1)))
    assert _eval(capsys, models["sst2"], "sst2", data, "--max-examples", "25")["examples"] == 25


def test_regression_json_equals_scipy(models, shared_data: Path, tmp_path: Path, capsys) -> None:
    from scipy.stats import pearsonr, spearmanr

    data = head_lines(shared_data / "glue" / "stsb" / "train.tsv", tmp_path / "stsb.tsv", 60)
    scores = _eval(capsys, models["stsb"], "stsb", data)
    assert set(scores) == {"pearson", "spearman", "examples"}
    logits, encoded = _logits(models["stsb"], "stsb", data, 128)
    gold = encoded.arrays["labels"]
    assert scores["pearson"] == pytest.approx(pearsonr(logits[:, 0], gold).statistic, abs=1e-6)
    assert scores["spearman"] == pytest.approx(spearmanr(logits[:, 0], gold).statistic, abs=1e-6)


def test_token_json_equals_seqeval(models, shared_data: Path, tmp_path: Path, capsys) -> None:
    from seqeval.metrics import f1_score

    data = conll_sentences(shared_data / "conll2003" / "train.txt", tmp_path / "conll.txt", 40)
    scores = _eval(capsys, models["conll2003"], "conll2003", data)
    assert set(scores) == {"entity_f1", "precision", "recall", "examples"} and scores["examples"] == 40
    model = jaxbert.load(models["conll2003"])
    sentences = read_conll(data)
    encoded = encode_task(read_task_file(get_task("conll2003"), data), model.tokenizer)
    from jaxbert.data.conll import encode_conll

    features = encode_conll(sentences, model.tokenizer, STANDARD_TAGS, max_length=128)
    predicted = predictions_to_words(predict_logits(model.config, model.params, encoded.arrays), features.word_ids,
                                     features.num_words)
    assert scores["entity_f1"] == pytest.approx(f1_score([list(s.tags) for s in sentences], predicted))


def test_span_json_has_squad_keys(models, shared_data: Path, tmp_path: Path, capsys) -> None:
    data = squad_subset(shared_data / "squad" / "train-sample.json", tmp_path / "squad.json", 2, 2)
    scores = _eval(capsys, models["squad_v1"], "squad_v1", data, "--max-length", "96")
    assert set(scores) == {"exact_match", "f1", "examples"} and scores["examples"] == 6
    assert 0.0 <= scores["exact_match"] <= scores["f1"] <= 100.0


# ---- bad input --------------------------------------------------------------------------------------

def _bad_tsv(shared_data: Path, tmp_path: Path, line: int, text: str) -> Path:
    path = head_lines(shared_data / "glue" / "sst2" / "train.tsv", tmp_path / "bad.tsv", 30)
    lines = path.read_text().split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines))
    return path


def _fails_in_one_line(capsys, argv: list[str], *fragments: str) -> None:
    code, out, err = _cli(argv, capsys)
    assert code == 1 and not out
    assert len(err) == 1, err
    for fragment in fragments:
        assert fragment in err[0], err[0]


@pytest.mark.parametrize(("line", "text", "fragments"), [
    (7, "a perfectly fine sentence\t7", ("line 7", "label '7'", "expected one of 0, 1")),
    (12, "one\ttoo many\t1", ("line 12", "3 tab-separated columns, expected 2")),
])
def test_bad_glue_rows_are_named_by_eval_and_finetune(models, shared_data, tmp_path, capsys, line, text, fragments):
    bad = _bad_tsv(shared_data, tmp_path, line, text)
    _fails_in_one_line(capsys, ["eval", "--model", str(models["sst2"]), "--task", "sst2", "--data", str(bad)],
                       "jaxbert eval: error:", str(bad), *fragments)
    workdir = tmp_path / "run"
    _fails_in_one_line(capsys, ["finetune", "--config", str(REPO / "configs/finetune/sst2.py"), "--workdir",
                                str(workdir), f"--config.init={models['sst2']}", f"--config.data.train={bad}",
                                "--config.data.eval="], "jaxbert finetune: error:", str(bad), *fragments)
    assert not workdir.exists()  # nothing written half-way
    # skipping instead: the other rows are scored, the skip is counted on stderr
    code, out, err = _cli(["eval", "--model", str(models["sst2"]), "--task", "sst2", "--data", str(bad),
                           "--on-error", "skip"], capsys)
    assert code == 0 and json.loads(out[0])["examples"] == 29 and "skipped" in err[0]


def test_bad_squad_answer_offset_names_the_question(models, shared_data, tmp_path, capsys) -> None:
    path = squad_subset(shared_data / "squad" / "train-sample.json", tmp_path / "squad.json", 0, 1)
    data = json.loads(path.read_text())
    qa = data["data"][0]["paragraphs"][0]["qas"][1]
    qa["answers"][0]["answer_start"] += 3
    path.write_text(json.dumps(data))
    argv = ["eval", "--model", str(models["squad_v1"]), "--task", "squad_v1", "--data", str(path)]
    _fails_in_one_line(capsys, argv, str(path), f"question {qa['id']}", "does not match the context")
    _fails_in_one_line(capsys, ["finetune", "--config", str(REPO / "configs/finetune/squad_v1.py"), "--workdir",
                                str(tmp_path / "run"), f"--config.init={models['squad_v1']}",
                                f"--config.data.train={path}", f"--config.data.eval={path}"],
                       f"question {qa['id']}")
    code, out, err = _cli([*argv, "--on-error", "skip", "--max-length", "96"], capsys)
    assert code == 0 and json.loads(out[0])["examples"] == 2 and "bad_answer" in err[0]


def test_bad_conll_tag_names_the_line(models, shared_data, tmp_path, capsys) -> None:
    path = conll_sentences(shared_data / "conll2003" / "train.txt", tmp_path / "c.txt", 5)
    lines = path.read_text().split("\n")
    lines[3] = lines[3].rsplit(" ", 1)[0] + " B-FOOD"
    path.write_text("\n".join(lines))
    _fails_in_one_line(capsys, ["eval", "--model", str(models["conll2003"]), "--task", "conll2003", "--data",
                                str(path)], str(path), "line 4", "'B-FOOD'")


def test_model_and_task_must_match(models, shared_data, tmp_path, capsys) -> None:
    data = head_lines(shared_data / "glue" / "stsb" / "train.tsv", tmp_path / "stsb.tsv", 5)
    _fails_in_one_line(capsys, ["eval", "--model", str(models["sst2"]), "--task", "stsb", "--data", str(data)],
                       "stsb needs a classification head with 1 output")
    _fails_in_one_line(capsys, ["eval", "--model", str(models["sst2"]), "--task", "glue", "--data", str(data)],
                       "unknown fine-tuning task 'glue'")
