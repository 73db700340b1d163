"""GLUE: real SST-2 / STS-B files parse with the published counts, features match transformers' tokenizer,
every task's layout reads, bad rows and labels are named, deterministic held-out split, TFDS label mapping."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from jaxbert.data.glue import (
    GLUE_TASKS,
    GlueDataError,
    encode_glue,
    get_glue_task,
    load_glue_tfds,
    read_glue_dir,
    read_glue_tsv,
    train_validation_split,
)
from jaxbert.tokenize import load_tokenizer


@pytest.fixture(scope="module")
def tok(minilm_dir: Path):
    """bert-base-uncased WordPiece, as jaxbert loads it from the MiniLM checkpoint."""
    return load_tokenizer(minilm_dir)


@pytest.fixture(scope="module")
def sst2(shared_data: Path):
    return read_glue_tsv(shared_data / "glue" / "sst2" / "train.tsv", "sst2")


@pytest.fixture(scope="module")
def stsb(shared_data: Path):
    return read_glue_dir(shared_data / "glue" / "stsb", "STS-B", "train")


def _csv_rows(path: Path) -> list[list[str]]:
    """The file as Python's csv module reads GLUE TSVs (tab-separated, no quoting), header dropped."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]


def test_sst2_counts_and_texts(sst2, shared_data: Path):
    # shared/data README: 67,349 rows, 37,569 label 1 and 29,780 label 0 (the published GLUE SST-2 train set).
    assert len(sst2) == 67349 and not sst2.skipped
    labels = np.array([e.label for e in sst2.examples])
    assert (labels == 1).sum() == 37569 and (labels == 0).sum() == 29780
    rows = _csv_rows(shared_data / "glue" / "sst2" / "train.tsv")
    assert [e.text_a for e in sst2.examples] == [r[0] for r in rows]
    assert all(e.text_b is None for e in sst2.examples)
    assert sst2.task.metrics == ("accuracy",) and sst2.task.num_labels == 2


def test_stsb_counts_and_scores(stsb, shared_data: Path):
    assert len(stsb) == 5749 and stsb.task.is_regression and stsb.task.num_labels == 1
    rows = _csv_rows(shared_data / "glue" / "stsb" / "train.tsv")
    assert [(e.text_a, e.text_b, e.label) for e in stsb.examples] == [(r[7], r[8], float(r[9])) for r in rows]
    scores = np.array([e.label for e in stsb.examples])
    assert scores.min() >= 0.0 and scores.max() <= 5.0 and len(np.unique(scores)) > 100
    assert stsb.task.metrics == ("pearson", "spearman")


def test_features_match_transformers_tokenizer(sst2, stsb, tok, minilm_dir: Path):
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    single = encode_glue(sst2.examples[:300], tok, max_length=32, task=sst2.task)
    want = reference([e.text_a for e in sst2.examples[:300]], max_length=32, padding="max_length", truncation=True)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(single[key], np.asarray(want[key]))
    assert single["labels"].dtype == np.int32 and single["labels"].tolist() == [e.label for e in sst2.examples[:300]]

    sub = type(stsb)(task=stsb.task, examples=stsb.examples[:300])
    pair = encode_glue(sub, tok, max_length=24)
    want = reference([e.text_a for e in sub.examples], [e.text_b for e in sub.examples], max_length=24,
                     padding="max_length", truncation="longest_first")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(pair[key], np.asarray(want[key]))
    assert pair["labels"].dtype == np.float32
    np.testing.assert_allclose(pair["labels"], [e.label for e in sub.examples])


# ---- every task's file layout, on hand-made files in the GLUE distribution's column order --------------

LAYOUTS = {
    "cola": (None, ["gj04\t1\t\tOur friends won't buy this analysis.", "gj04\t0\t*\tThey drank the pub."],
             [("Our friends won't buy this analysis.", None, 1), ("They drank the pub.", None, 0)]),
    "mrpc": ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String", ["1\t702876\t702977\tHe said.\tHe stated."],
             [("He said.", "He stated.", 1)]),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", ["5\t11\t12\tWhy?\tHow come?\t1"],
            [("Why?", "How come?", 1)]),
    "qnli": ("index\tquestion\tsentence\tlabel", ["0\tWho?\tHim.\tnot_entailment"], [("Who?", "Him.", 1)]),
    "rte": ("index\tsentence1\tsentence2\tlabel", ["0\tA dog runs.\tAn animal runs.\tentailment"],
            [("A dog runs.", "An animal runs.", 0)]),
    "wnli": ("index\tsentence1\tsentence2\tlabel", ["0\tIt fell.\tThe cup fell.\t1"],
             [("It fell.", "The cup fell.", 1)]),
}
MNLI_TRAIN_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                     "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER.replace("label1\tgold_label", "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")


def _write(path: Path, header: str | None, rows: list[str]) -> Path:
    path.write_text("\n".join(([header] if header else []) + rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("task", sorted(LAYOUTS))
def test_task_layouts(tmp_path: Path, task: str):
    header, rows, expected = LAYOUTS[task]
    split = read_glue_tsv(_write(tmp_path / "train.tsv", header, rows), task)
    assert [(e.text_a, e.text_b, e.label) for e in split.examples] == expected


def test_mnli_train_and_dev_layouts_and_label_order(tmp_path: Path):
    parses = "\t".join(["(x)"] * 4)
    train = _write(tmp_path / "train.tsv", MNLI_TRAIN_HEADER,
                   [f"0\t1\t1n\tfiction\t{parses}\tA man sleeps.\tA person rests.\tentailment\tentailment",
                    f"1\t2\t2c\tfiction\t{parses}\tIt is day.\tIt is night.\tcontradiction\tcontradiction"])
    five_votes = "\t".join(["neutral"] * 6)
    _write(tmp_path / "dev_matched.tsv", MNLI_DEV_HEADER,
           [f"0\t3\t3n\tslate\t{parses}\tShe ran.\tShe was late.\t{five_votes}"])
    assert [e.label for e in read_glue_tsv(train, "mnli").examples] == [1, 0]
    assert get_glue_task("mnli").labels == ("contradiction", "entailment", "neutral")
    dev_split = read_glue_dir(tmp_path, "mnli", "validation_matched")
    assert [(e.text_a, e.text_b, e.label) for e in dev_split.examples] == [("She ran.", "She was late.", 2)]
    with pytest.raises(GlueDataError, match="no split 'validation'"):
        read_glue_dir(tmp_path, "mnli", "validation")


def test_every_task_declares_labels_metrics_and_tfds_keys():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    for task in GLUE_TASKS.values():
        assert task.metrics and set(task.metrics) <= {"accuracy", "f1", "mcc", "pearson", "spearman"}
        assert len(task.tfds_text_keys) == len(task.text_fields)
        if task.labels is not None:
            assert len(task.labels) == len(task.label_names) == task.num_labels
    with pytest.raises(GlueDataError, match="unknown GLUE task 'squad'"):
        get_glue_task("squad")


# ---- bad input -----------------------------------------------------------------------------------------


def test_wrong_column_count_names_file_and_line(tmp_path: Path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel", ["good movie \t1", "a stray\ttab \t0", "bad \t0"])
    with pytest.raises(GlueDataError, match=r"train\.tsv, line 3: 3 tab-separated columns, expected 2"):
        read_glue_tsv(path, "sst2")


def test_label_outside_the_label_set_names_file_line_and_value(tmp_path: Path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel", ["good \t1", "meh \t2", "bad \t0", "odd\tpositive"])
    with pytest.raises(GlueDataError, match=r"train\.tsv, line 3: label '2' is not a sst2 label"):
        read_glue_tsv(path, "sst2")
    split = read_glue_tsv(path, "sst2", on_error="skip")
    assert [e.text_a for e in split.examples] == ["good ", "bad "]
    assert split.skipped == {"bad_label": 2}
    cols = _write(tmp_path / "cols.tsv", "sentence\tlabel", ["good \t1", "x\ty\t1"])
    assert read_glue_tsv(cols, "sst2", on_error="skip").skipped == {"bad_columns": 1}


def test_bad_regression_score_and_bad_files(tmp_path: Path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    path = _write(tmp_path / "train.tsv", header, ["0\tg\tf\ty\t1\tn\tn\tA.\tB.\t5.5"])
    with pytest.raises(GlueDataError, match=r"line 2: score '5.5' is not a number in \[0.0, 5.0\]"):
        read_glue_tsv(path, "stsb")
    with pytest.raises(GlueDataError, match="header has no column"):
        read_glue_tsv(_write(tmp_path / "h.tsv", "text\tlabel", ["a\t1"]), "sst2")
    with pytest.raises(GlueDataError, match="does not exist"):
        read_glue_tsv(tmp_path / "none.tsv", "sst2")
    (tmp_path / "latin1.tsv").write_bytes(b"sentence\tlabel\ngood\t1\ncaf\xe9\t0\n")
    with pytest.raises(GlueDataError, match=r"latin1\.tsv, line 3: not UTF-8"):
        read_glue_tsv(tmp_path / "latin1.tsv", "sst2")


# ---- held-out split -------------------------------------------------------------------------------------


def test_train_validation_split_is_deterministic_and_disjoint(sst2):
    train, val = train_validation_split(sst2.examples, 0.1, seed=0)
    assert len(val) == round(0.1 * len(sst2)) and len(train) + len(val) == len(sst2)
    assert {e.guid for e in train}.isdisjoint({e.guid for e in val})
    again = train_validation_split(sst2.examples, 0.1, seed=0)
    assert [e.guid for e in again[1]] == [e.guid for e in val]
    other = train_validation_split(sst2.examples, 0.1, seed=1)
    assert [e.guid for e in other[1]] != [e.guid for e in val]
    # Both parts keep file order, and the held-out part is spread over the file, not its tail.
    lines = [int(e.guid.split(":")[1]) for e in val]
    assert lines == sorted(lines) and lines[0] < 1000 and lines[-1] > 66000
    with pytest.raises(GlueDataError, match="fraction"):
        train_validation_split(sst2.examples, 1.0, seed=0)


# ---- TFDS ------------------------------------------------------------------------------------------------


def test_tfds_labels_are_mapped_by_class_name():
    tfds = pytest.importorskip("tensorflow_datasets")
    # TFDS glue/mnli orders its classes entailment, neutral, contradiction; -1 marks unlabelled test rows.
    records = [{"premise": b"P0", "hypothesis": b"H0", "label": 0, "idx": 0},
               {"premise": b"P1", "hypothesis": b"H1", "label": 2, "idx": 1},
               {"premise": b"P2", "hypothesis": b"H2", "label": -1, "idx": 2},
               {"premise": "P3", "hypothesis": "H3", "label": 1, "idx": 3}]
    with tfds.testing.mock_data(as_data_source_fn=lambda builder, split, **kw: records):
        split = load_glue_tfds("mnli", "validation_matched", download=False)
    task = split.task
    assert [(e.text_a, e.text_b, task.labels[e.label]) for e in split.examples] == [
        ("P0", "H0", "entailment"), ("P1", "H1", "contradiction"), ("P3", "H3", "neutral")]
    assert split.skipped == {"unlabelled": 1}
