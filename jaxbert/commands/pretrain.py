"""`jaxbert pretrain`: tokenizer → array_record dataset → the train loop, all cached in the workdir.

    jaxbert pretrain --config configs/pretrain/bert_base.py --workdir DIR [--config.key=value ...]

A restarted run in the same workdir reuses the tokenizer and dataset and resumes from the
latest complete checkpoint. The workdir ends up loadable with `jaxbert.load(DIR)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxbert.errors import JaxbertError

log = logging.getLogger("jaxbert.pretrain")

# The pretraining-example format each sentence-pair task reads (RoBERTa: FULL-SENTENCES packing).
DATA_FORMAT = {"nsp": "nsp", "sop": "sop", "none": "full_sentences"}
# The vocabulary each family trains when the config names no tokenizer.
VOCAB_KIND = {"bert": "wordpiece", "electra": "wordpiece", "distilbert": "wordpiece", "roberta": "bpe",
              "albert": "sentencepiece", "xlnet": "xlnet"}
BUILTIN_CORPUS = "builtin:python-docs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="ml_collections config file with get_config(); 'file.py:arg' passes arg")
    parser.add_argument("--workdir", required=True, help="checkpoints, metrics.jsonl, tokenizer and data cache")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("absl", "orbax", "jax._src", "tensorflow_datasets", "grain"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def corpus_paths(config: Any, workdir: Path, key: str = "corpus") -> list[str]:
    """data.corpus (or data.eval_corpus) as a list; the builtin Python-docs corpus is written on demand."""
    raw = config.data.get(key, ())
    entries = [raw] if isinstance(raw, str) else list(raw)
    out = []
    for entry in entries:
        if str(entry).startswith(BUILTIN_CORPUS):
            from jaxbert.quickstart import write_python_docs_corpus

            train, held_out = write_python_docs_corpus(workdir / "corpus")
            out.append(str(held_out if str(entry).endswith(":eval") else train))
        elif entry:
            out.append(str(entry))
    return out


def prepare_tokenizer(config: Any, workdir: Path) -> Any:
    """The run's tokenizer, saved in WORKDIR/tokenizer: from data.tokenizer, else the one of config.init
    (a phase-2 run keeps phase 1's vocabulary), else a vocabulary trained on the corpus."""
    from jaxbert.config import resolve_model_config
    from jaxbert.tokenize import find_tokenizer, load_tokenizer, train_vocab
    from jaxbert.train.checkpoint import TOKENIZER_DIR
    from jaxbert.train.experiment import model_spec

    target = workdir / TOKENIZER_DIR
    if target.is_dir() and any(target.iterdir()):
        return load_tokenizer(target)  # a resumed run keeps the vocabulary it started with
    source = str(config.data.get("tokenizer", "") or "")
    tokenizer = load_tokenizer(source) if source else None
    init = str(config.get("init", "") or "")
    if tokenizer is None and init:
        tokenizer = next((t for t in (find_tokenizer(d) for d in (Path(init) / TOKENIZER_DIR, Path(init))
                                      if d.is_dir()) if t is not None), None)
    if tokenizer is not None:
        tokenizer.save(str(target))
        return tokenizer
    family = resolve_model_config(model_spec(config)).family
    kind = str(config.data.get("vocab_kind", "") or VOCAB_KIND[family])
    paths = corpus_paths(config, workdir)
    log.info("training a %d-id %s vocabulary on %s", int(config.data.vocab_size), kind, ", ".join(paths))
    return train_vocab(paths, kind, int(config.data.vocab_size), target,
                       lowercase=None if kind == "bpe" else bool(config.data.get("lowercase", True)),
                       errors=str(config.data.get("encoding_errors", "strict")),
                       text_field=str(config.data.get("text_field", "text")))


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


def dataset_dir(config: Any, workdir: Path, split: str) -> Path:
    base = Path(config.data.get("data_dir", "") or workdir / "data")
    fmt = DATA_FORMAT[str(config.objective.get("pair_task", "nsp"))]
    return base / f"{split}-{fmt}-{int(config.train.seq_len)}"


def prepare_datasets(config: Any, workdir: Path, tokenizer: Any) -> tuple[Path, Path | None]:
    """Build (or reuse) the array_record train dataset, and the eval one when data.eval_corpus is set."""
    from jaxbert.data.tfds_builder import build_pretraining_dataset

    fmt = DATA_FORMAT[str(config.objective.get("pair_task", "nsp"))]
    d = config.data
    built: dict[str, Path | None] = {"train": None, "eval": None}
    for split, key in (("train", "corpus"), ("eval", "eval_corpus")):
        paths = corpus_paths(config, workdir, key)
        if not paths:
            continue
        out = dataset_dir(config, workdir, split)
        summary = build_pretraining_dataset(
            paths, tokenizer, out, format=fmt, max_seq_len=int(config.train.seq_len),
            seed=int(config.seed), dupe_factor=int(d.get("dupe_factor", 1)),
            short_seq_prob=float(d.get("short_seq_prob", 0.1)), text_field=str(d.get("text_field", "text")),
            errors=str(d.get("encoding_errors", "strict")))
        log.info("%s data: %s", split, summary.describe())
        built[split] = out
    if built["train"] is None:
        raise JaxbertError("config.data.corpus: no corpus given; set it to text/jsonl paths, a tfds: name, or "
                           f"{BUILTIN_CORPUS} for the bundled Python documentation")
    return built["train"], built["eval"]


def load_init_params(config: Any, objective: Any) -> Any:
    """The training params config.init starts from.

    A workdir trained with the same objective and shapes gives back everything it trained (ELECTRA's
    generator too); otherwise the model of a workdir, jaxbert bundle or Hugging Face dir must match
    config.model (a one-line error names the first differing parameter), and the objective fills in
    what the model lacks.
    """
    import jax

    import jaxbert
    from jaxbert.model import check_params
    from jaxbert.train.checkpoint import is_workdir, load_training_params, read_checkpoint_meta

    path = str(config.init)
    rng = jax.random.key(int(config.seed))
    if is_workdir(path) and read_checkpoint_meta(path)[1].get("objective") == objective.name:
        _, params = load_training_params(path)
        if _same_shapes(params, jax.eval_shape(objective.init, rng)):
            log.info("starting from every trained parameter of %s", path)
            return params
    model_params = jaxbert.load(path).params
    check_params(objective.model_config, model_params, source=path)
    return objective.params_from_model(model_params, rng)


def _same_shapes(a: Any, b: Any) -> bool:
    import jax

    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and shapes(a) == shapes(b)


def run_pretraining(config: Any, workdir: str | os.PathLike) -> Any:
    """The whole pretraining pipeline for an experiment config; returns the loop's TrainResult."""
    import jax

    from jaxbert.data.loader import make_pretraining_loader
    from jaxbert.objectives.base import build_objective
    from jaxbert.parallel import maybe_initialize_distributed, process_zero_first
    from jaxbert.train.checkpoint import TOKENIZER_DIR
    from jaxbert.train.experiment import validate_train_config
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import write_run_config

    maybe_initialize_distributed(dict(config.get("distributed", {})))
    validate_train_config(config, jax.device_count())
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer = process_zero_first(lambda: prepare_tokenizer(config, workdir))
    fit_model_to_tokenizer(config, tokenizer)
    objective = build_objective(config, tokenizer)
    validate_train_config(config, jax.device_count())
    train_dir, eval_dir = process_zero_first(lambda: prepare_datasets(config, workdir, tokenizer))
    t = config.train
    loader = make_pretraining_loader(train_dir, int(t.batch_size), seed=int(config.data.get("shuffle_seed", 0)),
                                     num_threads=int(config.data.get("reader_threads", 2)))
    eval_batches: Callable[[], Iterator[Any]] | None = None
    if eval_dir is not None:
        def eval_batches() -> Iterator[Any]:
            return make_pretraining_loader(eval_dir, int(t.batch_size), shuffle=False, num_epochs=1,
                                           num_threads=1, prefetch_batches=1)
    init_params = load_init_params(config, objective) if config.get("init", "") else None
    write_run_config(workdir, config)
    return train(config, workdir, objective, loader, eval_batches, init_params, tokenizer_dir=TOKENIZER_DIR)


def run(args: argparse.Namespace) -> int:
    from jaxbert.train.experiment import apply_overrides, load_config

    setup_logging()
    config = load_config(args.config)
    apply_overrides(config, getattr(args, "overrides", []))
    result = run_pretraining(config, args.workdir)
    summary = {"workdir": str(Path(args.workdir).absolute()), "status": result.status, "step": result.step,
               **{k: round(v, 6) for k, v in result.metrics.items() if k in ("loss", "mlm_accuracy")},
               **{k: round(v, 6) for k, v in result.eval_metrics.items()}}
    print(json.dumps(summary))
    return 0
