"""The array_record datasets of a pretraining run, built once from the corpus and reused on resume."""

from __future__ import annotations

import logging
from typing import Any

from jaxbert import storage
from jaxbert.data.python_docs import BUILTIN_CORPUS
from jaxbert.errors import JaxbertError

log = logging.getLogger("jaxbert.pretrain")

# The pretraining-example format each sentence-pair task reads (RoBERTa: FULL-SENTENCES packing).
DATA_FORMAT = {"nsp": "nsp", "sop": "sop", "none": "full_sentences"}


def corpus_paths(config: Any, workdir: storage.Path, key: str = "corpus") -> list[str]:
    """data.corpus (or data.eval_corpus) as a list; the builtin Python-docs corpus is written on demand."""
    raw = config.data.get(key, ())
    entries = [raw] if isinstance(raw, str) else list(raw)
    out = []
    for entry in entries:
        if str(entry).startswith(BUILTIN_CORPUS):
            from jaxbert.data.python_docs import write_python_docs_corpus

            train, held_out = write_python_docs_corpus(workdir / "corpus")
            out.append(str(held_out if str(entry).endswith(":eval") else train))
        elif entry:
            out.append(str(entry))
    return out


def example_format(config: Any) -> str:
    """The pair task's example format; without one, data.packing picks full_sentences or doc_sentences."""
    fmt = DATA_FORMAT[str(config.objective.get("pair_task", "nsp"))]
    packing = str(config.data.get("packing", "") or fmt)
    if fmt == "full_sentences" and packing not in ("full_sentences", "doc_sentences"):
        raise JaxbertError(f"config.data.packing={packing!r}: use 'full_sentences' (examples cross documents) or "
                           "'doc_sentences' (they do not)")
    return packing if fmt == "full_sentences" else fmt


def packing_options(config: Any) -> dict[str, Any]:
    """data.pack_examples / data.max_examples_per_row: several examples per row (jaxbert.data.packing)."""
    d = config.data
    return {"pack_examples": bool(d.get("pack_examples", False)),
            "max_examples_per_row": int(d.get("max_examples_per_row", 0))}


def dataset_dir(config: Any, workdir: storage.Path, split: str) -> storage.Path:
    base = storage.path(config.data.get("data_dir", "") or workdir / "data")
    packed = "-packed" if packing_options(config)["pack_examples"] else ""
    return base / f"{split}-{example_format(config)}-{int(config.train.seq_len)}{packed}"


def prepare_datasets(config: Any, workdir: storage.Path, tokenizer: Any) -> tuple[storage.Path, storage.Path | None]:
    """Build (or reuse) the array_record train dataset, and the eval one when data.eval_corpus is set."""
    from jaxbert.data.tfds_builder import build_pretraining_dataset

    fmt = example_format(config)
    d = config.data
    built: dict[str, storage.Path | None] = {"train": None, "eval": None}
    for split, key in (("train", "corpus"), ("eval", "eval_corpus")):
        paths = corpus_paths(config, workdir, key)
        if not paths:
            continue
        out = dataset_dir(config, workdir, split)
        summary = build_pretraining_dataset(
            paths, tokenizer, out, format=fmt, max_seq_len=int(config.train.seq_len),
            seed=int(config.seed), dupe_factor=int(d.get("dupe_factor", 1)),
            short_seq_prob=float(d.get("short_seq_prob", 0.1)), text_field=str(d.get("text_field", "text")),
            errors=str(d.get("encoding_errors", "strict")), word_segmenter=str(d.get("word_segmenter", "")),
            sentence_split=str(d.get("sentence_split", "lines")), line_documents=bool(d.get("line_documents", False)),
            **packing_options(config))
        log.info("%s data: %s", split, summary.describe())
        built[split] = out
    if built["train"] is None:
        raise JaxbertError("config.data.corpus: no corpus given; set it to text/jsonl paths, a tfds: name, or "
                           f"{BUILTIN_CORPUS} for the bundled Python documentation")
    return built["train"], built["eval"]
