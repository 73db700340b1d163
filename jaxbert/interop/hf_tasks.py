"""Hugging Face interop for fine-tuned task models: *ForSequenceClassification, *ForQuestionAnswering,
*ForTokenClassification, for bert, roberta, albert, electra, distilbert and xlnet (whose extractive QA
class is XLNetForQuestionAnsweringSimple: XLNetForQuestionAnswering's beam-search heads are not ours).

Builds on the base-model name tables of `jaxbert.interop.hf_names`: the encoder keeps its keys under
the family prefix ("bert.", "roberta.", ...), and the task head maps onto the class's head modules.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop import hf
from jaxbert.interop.hf_config import hf_config_dict
from jaxbert.interop.hf_convert import LEAVES, hf_key, hf_shape, to_hf, to_ours
from jaxbert.interop.hf_files import (
    CONFIG_FILE,
    SAFETENSORS_FILE,
    read_config,
    read_weights,
    write_directory_atomically,
    write_safetensors,
)
from jaxbert.interop.hf_names import FAMILIES
from jaxbert.model import check_params, param_shapes, unrolled_to_scan

Params = Any

CLASS_PREFIX = {"bert": "Bert", "roberta": "Roberta", "albert": "Albert", "electra": "Electra",
                "distilbert": "DistilBert", "xlnet": "XLNet"}
TASK_SUFFIX = {"classification": "ForSequenceClassification", "span": "ForQuestionAnswering",
               "token": "ForTokenClassification"}
_SUFFIX_OVERRIDES = {("xlnet", "span"): "ForQuestionAnsweringSimple"}


def _class_name(family: str, task: str) -> str:
    return CLASS_PREFIX[family] + _SUFFIX_OVERRIDES.get((family, task), TASK_SUFFIX[task])

# (ours, theirs, kind) of each task head, per family.
_CLASSIFIER_WITH_DENSE = (("task_head/dense", "classifier.dense", "linear"),
                          ("task_head/out", "classifier.out_proj", "linear"))
TASK_HEADS: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    **{(f, "classification"): (("task_head/out", "classifier", "linear"),) for f in ("bert", "albert")},
    ("roberta", "classification"): _CLASSIFIER_WITH_DENSE,
    ("electra", "classification"): _CLASSIFIER_WITH_DENSE,
    ("distilbert", "classification"): (("task_head/dense", "pre_classifier", "linear"),
                                       ("task_head/out", "classifier", "linear")),
    ("xlnet", "classification"): (("task_head/dense", "sequence_summary.summary", "linear"),
                                  ("task_head/out", "logits_proj", "linear")),
    **{(f, "span"): (("task_head/out", "qa_outputs", "linear"),) for f in CLASS_PREFIX},
    **{(f, "token"): (("task_head/out", "classifier", "linear"),) for f in CLASS_PREFIX},
}
# Where each family's config.json keeps the task head's dropout.
_DROPOUT_FIELD = {"bert": "classifier_dropout", "roberta": "classifier_dropout", "electra": "classifier_dropout",
                  "albert": "classifier_dropout_prob", "xlnet": "summary_last_dropout"}


def task_architecture(config: ModelConfig) -> str:
    """The transformers class of a fine-tuned model, e.g. "BertForSequenceClassification"."""
    if config.task not in TASK_SUFFIX:
        raise JaxbertError(f"config.task={config.task!r} is not a task head; export a fine-tuned model")
    if config.heads:
        raise JaxbertError(f"a task model with pretraining heads {list(config.heads)} has no transformers class; "
                           "drop the pretraining heads (heads=()) before exporting")
    wants_pooler = config.task == "classification" and config.family in ("bert", "albert")
    if config.pooler != wants_pooler:
        raise JaxbertError(f"transformers' {_class_name(config.family, config.task)} has "
                           f"{'a' if wants_pooler else 'no'} pooler; set pooler={wants_pooler}")
    return _class_name(config.family, config.task)


def is_task_architecture(name: str) -> bool:
    return any(name == _class_name(f, t) for f in CLASS_PREFIX for t in TASK_SUFFIX)


def task_config_dict(config: ModelConfig, label_names: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    """config.json of the matching transformers task model (labels as id2label / label2id)."""
    arch = task_architecture(config)
    # The encoder's fields are those of the family's bare *Model (with or without a pooler).
    base_pooler = config.family in ("bert", "roberta", "albert")
    fields = hf_config_dict(config.replace(task="", num_labels=0, heads=(), pooler=base_pooler))
    fields["architectures"] = [arch]
    num_labels = config.num_labels
    names = list(label_names) if label_names else [f"LABEL_{i}" for i in range(num_labels)]
    if len(names) != num_labels:
        raise JaxbertError(f"{len(names)} label names for a head with {num_labels} outputs; pass one name per output")
    fields["id2label"] = {str(i): n for i, n in enumerate(names)}
    fields["label2id"] = {n: i for i, n in enumerate(names)}
    if config.task == "classification":
        fields["problem_type"] = "regression" if num_labels == 1 else "single_label_classification"
    if config.family == "distilbert":
        fields["seq_classif_dropout"] = fields["qa_dropout"] = config.classifier_dropout
    else:
        fields[_DROPOUT_FIELD[config.family]] = config.classifier_dropout
    return fields


def _encoder_config(config: ModelConfig) -> ModelConfig:
    return config.replace(task="", num_labels=0, heads=())


def _items(config: ModelConfig) -> list[hf._Item]:
    names = FAMILIES[config.family]
    items = hf._plan(_encoder_config(config), names, names.base_prefix + ".")
    items.extend(hf._Item(o, (t,), k) for o, t, k in TASK_HEADS[(config.family, config.task)])
    return items


def task_state_dict(config: ModelConfig, params: Params) -> dict[str, np.ndarray]:
    """Our task model's params as the state dict of `task_architecture(config)`."""
    check_params(config, params, source="params to export")
    if not config.scan_layers:
        params = unrolled_to_scan(params, config)
        config = config.replace(scan_layers=True)
    flat = hf._flatten(jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), params))
    out: dict[str, np.ndarray] = {}
    for item in _items(config):
        for leaf, suffix in LEAVES[item.kind]:
            value = flat.pop(f"{item.ours}/{leaf}" if leaf else item.ours)
            for i, module in enumerate(item.theirs):
                out[hf_key(module, suffix)] = to_hf(item.kind, leaf, value[i] if item.stacked else value)
    if flat:
        raise JaxbertError(f"cannot export parameter {sorted(flat)[0]}: {task_architecture(config)} has no place "
                           "for it")
    return out


def export_hf_task(config: ModelConfig, params: Params, out_dir: str | os.PathLike,
                   label_names: tuple[str, ...] | list[str] | None = None, overwrite: bool = False) -> Path:
    """Write config.json + model.safetensors that transformers' task class loads exactly; atomic."""
    fields = task_config_dict(config, label_names)
    tensors = task_state_dict(config, params)

    def fill(tmp: Path) -> None:
        (tmp / CONFIG_FILE).write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_safetensors(tensors, tmp / SAFETENSORS_FILE)

    return write_directory_atomically(Path(out_dir), fill, overwrite=overwrite)


# ---- import ---------------------------------------------------------------------------------------

def hf_task_of(path: str | os.PathLike) -> str | None:
    """Our task kind ("classification", "span", "token") of an HF directory holding a task model, else None."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file():
        return None
    try:
        archs = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    for family in CLASS_PREFIX:
        for task in TASK_SUFFIX:
            if archs and archs[0] == _class_name(family, task):
                return task
    return None


def label_names_of(path: str | os.PathLike) -> list[str] | None:
    """id2label of an HF directory's config.json in id order, or None."""
    try:
        id2label = read_config(Path(path)).get("id2label") or {}
        return [str(id2label[k]) for k in sorted(id2label, key=int)] if id2label else None
    except (JaxbertError, ValueError, TypeError, KeyError):
        return None


def load_hf_task(path: str | os.PathLike) -> tuple[ModelConfig, Params]:
    """Open an HF *ForSequenceClassification / *ForQuestionAnswering / *ForTokenClassification directory."""
    directory = Path(path)
    task = hf_task_of(directory)
    if task is None:
        raise JaxbertError(f"{directory / CONFIG_FILE} names no supported task architecture "
                           f"(*{', *'.join(TASK_SUFFIX.values())})")
    fields = read_config(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the task head's weights are read below, not skipped
        base, encoder_params = hf.load_hf(directory)
    id2label = fields.get("id2label") or {}
    num_labels = 2 if task == "span" else int(fields.get("num_labels") or len(id2label) or 2)
    dropout = fields.get("seq_classif_dropout") if base.family == "distilbert" else fields.get(
        _DROPOUT_FIELD[base.family])
    config = base.replace(task=task, num_labels=num_labels,
                          classifier_dropout=float(dropout) if dropout is not None else base.hidden_dropout)
    if config.family == "xlnet":
        _check_xlnet_summary(fields, task, directory)
        if task != "classification":  # XLNet's QA and token heads read the (already dropped-out) output as is
            config = config.replace(classifier_dropout=0.0)
    tensors = read_weights(directory)
    expected = hf._flatten(param_shapes(config))
    flat = hf._flatten(encoder_params)
    for ours, theirs, kind in TASK_HEADS[(config.family, task)]:
        for leaf, suffix in LEAVES[kind]:
            key, shape = hf_key(theirs, suffix), tuple(expected[f"{ours}/{leaf}"].shape)
            want = hf_shape(kind, leaf, shape)
            if key not in tensors or tuple(tensors[key].shape) != tuple(want):
                got = tuple(tensors[key].shape) if key in tensors else "missing"
                raise JaxbertError(f"{directory}: task head weight {key} is {got}, expected shape {want}; "
                                   "the weights do not match config.json")
            flat[f"{ours}/{leaf}"] = to_ours(kind, leaf, tensors[key], shape)
    params = jax.tree_util.tree_map(jnp.asarray, hf._unflatten(flat))
    check_params(config, params, source=str(directory))
    return config, params


def _check_xlnet_summary(fields: dict[str, Any], task: str, directory: Path) -> None:
    """XLNetForSequenceClassification's summary must be jaxbert's: last token -> dense -> tanh."""
    if task != "classification":
        return
    want = {"summary_type": "last", "summary_use_proj": True, "summary_activation": "tanh"}
    for key, value in want.items():
        if fields.get(key, value) != value:
            raise JaxbertError(f"{directory / CONFIG_FILE}: {key}={fields[key]!r} is not supported; jaxbert's XLNet "
                               f"classifier is summary_type='last', summary_use_proj=true, summary_activation='tanh'")
    if fields.get("summary_proj_to_labels") or fields.get("summary_first_dropout"):
        raise JaxbertError(f"{directory / CONFIG_FILE}: summary_proj_to_labels / summary_first_dropout are not "
                           "supported; jaxbert's XLNet summary projects to hidden_size with no first dropout")
