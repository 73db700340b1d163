"""The tokenizer of a pretraining run: given, inherited from config.init, or trained on the corpus; kept in
WORKDIR/tokenizer so a resumed run uses the vocabulary it started with."""

from __future__ import annotations

import logging
from typing import Any

from jaxbert import formats, storage
from jaxbert.pretrain.datasets import corpus_paths

log = logging.getLogger("jaxbert.pretrain")

# The vocabulary each family trains when the config names no tokenizer.
VOCAB_KIND = {"bert": "wordpiece", "electra": "wordpiece", "distilbert": "wordpiece", "roberta": "bpe",
              "albert": "sentencepiece", "xlnet": "xlnet"}


def prepare_tokenizer(config: Any, workdir: storage.Path) -> Any:
    """The run's tokenizer, saved in WORKDIR/tokenizer: from data.tokenizer, else the one of config.init
    (a phase-2 run keeps phase 1's vocabulary), else a vocabulary trained on the corpus."""
    from jaxbert.config import resolve_model_config
    from jaxbert.tokenize import find_tokenizer, load_tokenizer, train_vocab
    from jaxbert.train.experiment import model_spec

    target = workdir / formats.TOKENIZER_DIR
    if target.is_dir() and any(target.iterdir()):
        return load_tokenizer(target)  # a resumed run keeps the vocabulary it started with
    source = str(config.data.get("tokenizer", "") or "")
    tokenizer = load_tokenizer(source) if source else None
    init = str(config.get("init", "") or "")
    if tokenizer is None and init:
        base = storage.path(init)
        tokenizer = next((t for t in (find_tokenizer(d) for d in (base / formats.TOKENIZER_DIR, base)
                                      if d.is_dir()) if t is not None), None)
    if tokenizer is not None:
        formats.write_tokenizer_dir(target, tokenizer=tokenizer)
        return tokenizer
    family = resolve_model_config(model_spec(config)).family
    kind = str(config.data.get("vocab_kind", "") or VOCAB_KIND[family])
    paths = corpus_paths(config, workdir)
    log.info("training a %d-id %s vocabulary on %s", int(config.data.vocab_size), kind, ", ".join(paths))
    return train_vocab(paths, kind, int(config.data.vocab_size), target,
                       lowercase=None if kind == "bpe" else bool(config.data.get("lowercase", True)),
                       errors=str(config.data.get("encoding_errors", "strict")),
                       text_field=str(config.data.get("text_field", "text")),
                       limit_alphabet=int(config.data.get("limit_alphabet", 1000)),
                       segmenter=str(config.data.get("word_segmenter", "")))


def fit_model_to_tokenizer(config: Any, tokenizer: Any) -> None:
    """Set config.model's vocab_size / pad_token_id (and RoBERTa's position offset) from the tokenizer."""
    from jaxbert.config import resolve_model_config
    from jaxbert.train.experiment import model_spec

    spec = model_spec(config)
    spec = dict(spec) if isinstance(spec, dict) else {"preset": spec}
    model = resolve_model_config(spec)
    spec["vocab_size"] = int(tokenizer.vocab_size)
    spec["pad_token_id"] = int(tokenizer.special.pad)
    if model.position_offset:
        spec["position_offset"] = int(tokenizer.special.pad)
    with config.ignore_type():
        config.model = spec
