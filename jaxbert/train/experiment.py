"""Experiment configs: the base pretraining config, loading `get_config()` files, and `--config.x=v`
overrides (typed by the field they replace, as ml_collections' config_flags). Validation before
anything runs is `jaxbert.checks.validate_experiment`."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.train.spec import checkpoint_section, log_section, profile_section, resume_section, train_section


def bert_phases(config: ml_collections.ConfigDict, phase: str, steps: int = 1_000_000, lr: float = 1e-4
                ) -> ml_collections.ConfigDict:
    """BERT's two phases: seq 128 for 90% of the steps, then seq 512 for 10% (Devlin et al. 2019, A.2).

    Phase 1 runs the first 90% of one linear schedule (warmup, then decay towards 0 at `steps`).
    Phase 2 starts from phase 1's weights (`init`) and runs that schedule's last 10%: from the
    learning rate phase 1 ended at, linearly to 0. Unlike the original, Adam's moments restart.
    """
    if phase not in ("phase1", "phase2"):
        raise ConfigError(f"unknown phase {phase!r}; use 'phase1' (seq 128) or 'phase2' (seq 512)")
    t = config.train
    first = steps * 9 // 10
    # The paper's single schedule: lr(s) = lr * (steps - s) / (steps - warmup) after the warmup.
    lr_at_switch = lr * (steps - first) / (steps - t.warmup_steps)
    if phase == "phase1":
        t.update(dict(seq_len=128, steps=first, lr=lr, end_lr=lr_at_switch))
        config.objective.max_predictions = 20
    else:
        t.update(dict(seq_len=512, steps=steps - first, lr=lr_at_switch, warmup_steps=0, end_lr=0.0))
        config.objective.max_predictions = 80
        config.phase = "phase2"
    return config


def pretrain_config(model: str = "bert-base", pair_task: str = "nsp") -> ml_collections.ConfigDict:
    """Every key a pretraining run reads, with BERT-paper defaults; config files start from this."""
    c = ml_collections.ConfigDict()
    c.model = model
    c.seed = 0
    c.init = ""  # a workdir or bundle whose model params start this run (e.g. the seq-512 phase)
    c.phase = ""  # "phase2": the seq-512 continuation of a seq-128 run (needs init)
    c.objective = ml_collections.ConfigDict(dict(
        name="mlm", pair_task=pair_task, mask_prob=0.15, max_predictions=20, whole_word=False, ngram=1,
        mask_replace_prob=0.8, random_replace_prob=0.1))
    c.data = ml_collections.ConfigDict(dict(
        corpus=(),  # text / jsonl paths or globs, or a TFDS name ("tfds:wikipedia/20230601.en")
        tokenizer="",  # a tokenizer dir; empty: train a vocabulary on the corpus
        vocab_size=30522, vocab_kind="", lowercase=True,  # used only when training a vocabulary
        eval_corpus=(),  # held-out text for eval/ metrics; empty: no eval
        data_dir="",  # where the array_record datasets are built / reused; empty: WORKDIR/data
        text_field="text",  # the JSON-lines / TFDS field holding each document
        encoding_errors="strict",  # "replace": swap bytes that are not UTF-8 for U+FFFD (counted) instead of stopping
        short_seq_prob=0.1, dupe_factor=1, shuffle_seed=0, reader_threads=2,
        # Word starts for whole-word / n-gram masking from a segmenter (jieba, pku, spaces; see
        # jaxbert.data.segmenters) stored with the data; "" = the vocabulary's ## rule.
        word_segmenter="", sentence_split="lines",  # "rules": split lines after sentence-final punctuation
        line_documents=False,  # True: every text line is a document (a corpus without blank lines)
        # Several examples per row, told apart by segment ids (jaxbert.data.packing): attention stays inside
        # each example, positions restart, NSP/SOP reads each example's [CLS]; 0 examples = seq_len // 16.
        pack_examples=False, max_examples_per_row=0,
        packing="full_sentences"))  # no pair task: "full_sentences" (cross documents) or "doc_sentences"
    # BERT's recipe (Devlin et al. 2019, A.2); every other train/checkpoint field has its spec default.
    c.train = ml_collections.ConfigDict(train_section(steps=1_000_000, batch_size=256, seq_len=128, lr=1e-4,
                                                      warmup_steps=10_000, eval_every=10_000))
    c.checkpoint = ml_collections.ConfigDict(checkpoint_section(every=10_000))
    c.log = ml_collections.ConfigDict(log_section())  # trackers: jsonl, tensorboard (+ wandb)
    c.profile = ml_collections.ConfigDict(profile_section())  # a jax.profiler trace of some steps
    c.resume = ml_collections.ConfigDict(resume_section())  # fields a resumed run may change (allow_changes)
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, dcn_data=1))  # dcn_data: slices
    c.distributed = ml_collections.ConfigDict(dict(coordinator_address="", num_processes=-1, process_id=-1))
    return c


# Tiny models for CPU smoke runs (about a minute): 2 layers, hidden 128, a 2k vocabulary, no dropout
# (a minute of training on a small corpus underfits; dropout would only slow it down).
_NO_DROPOUT = {"hidden_dropout": 0.0, "attention_dropout": 0.0}
SMOKE = {
    "bert": ({"preset": "bert-tiny", "intermediate_size": 512, "max_position_embeddings": 128, **_NO_DROPOUT}, "nsp"),
    "roberta": ({"preset": "roberta-base", "num_layers": 2, "hidden_size": 128, "num_heads": 2,
                 "intermediate_size": 512, "max_position_embeddings": 130, **_NO_DROPOUT}, "none"),
    "albert": ({"preset": "albert-base", "num_layers": 2, "hidden_size": 128, "num_heads": 2,
                "intermediate_size": 512, "embedding_size": 64, "max_position_embeddings": 128}, "sop"),
    "xlnet": ({"preset": "xlnet-base", "num_layers": 2, "hidden_size": 128, "num_heads": 2,
               "intermediate_size": 512, **_NO_DROPOUT}, "nsp"),
}


def smoke_config(family: str = "bert") -> ml_collections.ConfigDict:
    """A tiny model of `family` pretrained for a minute on CPU on the bundled Python docs corpus."""
    if family not in SMOKE:
        raise ConfigError(f"no smoke recipe for {family!r}; use one of {', '.join(SMOKE)}")
    model, pair_task = SMOKE[family]
    c = pretrain_config(dict(model), pair_task)
    c.objective.max_predictions = 10
    c.data.corpus = ("builtin:python-docs",)
    c.data.eval_corpus = ("builtin:python-docs:eval",)
    c.data.vocab_size = 2000
    c.train.update(dict(steps=600, batch_size=32, seq_len=64, lr=2e-3, warmup_steps=60, log_every=20,
                        eval_every=300, eval_batches=4))
    c.checkpoint.update(dict(every=300, keep=2))
    return c


# ---- loading ------------------------------------------------------------------------------
def load_config(spec: str | Path) -> ml_collections.ConfigDict:
    """`get_config()` of a config file; "path.py:arg" passes `arg` (e.g. "bert_base.py:phase2")."""
    text = str(spec)
    scheme = "gs://" if text.startswith("gs://") else ""
    path, _, arg = text[len(scheme):].partition(":")
    if scheme:  # a config file in a bucket: executed from a local copy
        from jaxbert import storage

        path = str(storage.local_copy(scheme + path))
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config: no config file {file}; pass a path like configs/pretrain/bert_base.py")
    module_spec = importlib.util.spec_from_file_location(f"_jaxbert_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"--config: {file} defines no get_config(); a config file returns its ConfigDict there")
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        config = ml_collections.ConfigDict(config)
    return config


# ---- overrides ----------------------------------------------------------------------------
def parse_value(text: str, current: Any, key: str) -> Any:
    """`text` as the type of the field's current value (bool, int, float, str, tuple/list, dict)."""
    try:
        if isinstance(current, bool):
            low = text.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if isinstance(current, int):
            value = ast.literal_eval(text)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise ValueError(text)
            return value
        if isinstance(current, float):
            return float(text)
        if isinstance(current, (tuple, list)):
            stripped = text.strip()
            if stripped.startswith(("(", "[")):
                value = ast.literal_eval(stripped)
            else:
                value = [v for v in stripped.split(",") if v]
            return type(current)(value)
        if isinstance(current, str):
            return text
        if current is None or isinstance(current, (dict, ml_collections.ConfigDict)):
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return text
    except (ValueError, SyntaxError):
        pass
    raise ConfigError(f"config.{key}: cannot read {text!r} as a {type(current).__name__}")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> ml_collections.ConfigDict:
    """Apply `--config.a.b=value` strings in order; unknown keys are an error, as in config_flags.

    `--config.model.FIELD=v` on a preset-name model turns it into {"preset": name, FIELD: v}.
    """
    for item in overrides:
        body = item[len("--config."):] if item.startswith("--config.") else item
        if "=" not in body:
            raise ConfigError(f"{item}: an override needs a value, e.g. --config.train.lr=1e-4")
        key, text = body.split("=", 1)
        parts = key.split(".")
        if parts[0] == "model" and len(parts) == 2:
            _override_model_field(config, parts[1], text)
            continue
        node = config
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                raise ConfigError(f"config.{'.'.join(parts[:i + 1])}: no such key; check the spelling in {item}")
            node = node[part]
        leaf = parts[-1]
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            raise ConfigError(f"config.{key}: no such key; check the spelling in {item}")
        value = parse_value(text, node[leaf], key)
        with node.ignore_type():
            node[leaf] = value
    return config


def _override_model_field(config: ml_collections.ConfigDict, field: str, text: str) -> None:
    model = config.model
    spec = model.to_dict() if isinstance(model, ml_collections.ConfigDict) else {"preset": model}
    known = {f: getattr(ModelConfig(), f) for f in ModelConfig.__dataclass_fields__}
    if field not in known:
        raise ConfigError(f"config.model.{field}: ModelConfig has no such field; known: {', '.join(known)}")
    base = resolve_model_config(spec)
    spec[field] = parse_value(text, getattr(base, field), f"model.{field}")
    with config.ignore_type():
        config.model = spec


def model_spec(config: ml_collections.ConfigDict) -> Any:
    model = config.model
    return model.to_dict() if isinstance(model, ml_collections.ConfigDict) else model
