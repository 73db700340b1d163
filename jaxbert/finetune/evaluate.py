"""Scoring a fine-tuned model on a task's data file (what `jaxbert eval` runs)."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any

from jaxbert.errors import JaxbertError
from jaxbert.finetune.predict import predict_logits
from jaxbert.finetune.tasks import EncodeOptions, TaskSpec, encode_task, get_task, read_task_file


@dataclasses.dataclass
class TaskModel:
    """A fine-tuned model ready to score data: config, params, tokenizer, and its best-model task.json."""

    config: Any
    params: Any
    tokenizer: Any
    task_info: dict[str, Any]


def load_task_model(path: str | os.PathLike) -> TaskModel:
    """A fine-tuned model: a fine-tuning workdir (its best model), a jaxbert bundle or an HF task model dir."""
    from jaxbert.formats import open_model
    from jaxbert.tokenize import find_tokenizer

    loaded = open_model(path)
    tokenizer = find_tokenizer(loaded.tokenizer_dir) if loaded.tokenizer_dir is not None else None
    model = TaskModel(loaded.config, loaded.params, tokenizer, loaded.task_info)
    if not model.config.task:
        raise JaxbertError(f"{path} holds a model without a task head ({model.config.family}, heads "
                           f"{list(model.config.heads)}); fine-tune it first with `jaxbert finetune`")
    if model.tokenizer is None:
        raise JaxbertError(f"{path} has no tokenizer files; copy the tokenizer the model was fine-tuned with next "
                           "to it (vocab.txt / tokenizer.json ...)")
    return model


def check_model_fits(model: Any, spec: TaskSpec) -> None:
    """A one-line error when the model's task head cannot answer `spec` (e.g. a 2-way head for MNLI)."""
    cfg = model.config
    want_head = {"classification": "classification", "regression": "classification", "span": "span",
                 "token": "token"}[spec.kind]
    if cfg.task != want_head or cfg.num_labels != spec.num_labels():
        have = f"a {cfg.task} head with {cfg.num_labels} output(s)"
        need = f"a {want_head} head with {spec.num_labels()} output(s)"
        raise JaxbertError(f"the model has {have}, but {spec.name} needs {need}; evaluate it on the task it was "
                           "fine-tuned for")


def evaluate_file(model: Any, task: str, data: str | os.PathLike, max_examples: int = 0, max_length: int = 0,
                  batch_size: int = 64, on_error: str = "raise") -> tuple[dict[str, float], Counter]:
    """(the task's metrics with "examples", rows skipped by reason) of `model` on a data file."""
    spec = get_task(task)
    check_model_fits(model, spec)
    examples = read_task_file(spec, data, on_error)
    if max_examples > 0:
        examples = examples.subset(examples.items[:max_examples])
    info = getattr(model, "task_info", None) or {}
    fields = {f.name for f in dataclasses.fields(EncodeOptions)}
    settings = {k: v for k, v in (info.get("settings") or {}).items() if k in fields}
    if max_length > 0:
        settings["max_length"] = max_length
    settings.setdefault("max_length", 384 if spec.source == "squad" else 128)
    settings["on_error"] = on_error
    encoded = encode_task(examples, model.tokenizer, EncodeOptions(**settings))
    logits = predict_logits(model.config, model.params, encoded.arrays, batch_size)
    return encoded.score(logits), encoded.skipped
