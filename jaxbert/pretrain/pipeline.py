"""The pretraining pipeline: tokenizer → array_record datasets → the one train loop, cached in the workdir.

A restarted run in the same workdir reuses the tokenizer and dataset and resumes from the latest
complete checkpoint. The workdir ends up loadable with `jaxbert.load(DIR)`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from jaxbert import storage
from jaxbert.pretrain.datasets import prepare_datasets
from jaxbert.pretrain.tokenizer import fit_model_to_tokenizer, prepare_tokenizer

log = logging.getLogger("jaxbert.pretrain")


def open_start(config: Any) -> Any:
    """The trained model config.init names (a `jaxbert.formats.LoadedModel`), or None for a fresh start."""
    from jaxbert import formats

    init = str(config.get("init", "") or "")
    return formats.open_model(init) if init else None


def run_pretraining(config: Any, workdir: str | os.PathLike) -> Any:
    """The whole pretraining pipeline for an experiment config; returns the loop's TrainResult."""
    import jax

    from jaxbert.checks import validate_experiment
    from jaxbert.data.loader import make_pretraining_loader
    from jaxbert.formats import TOKENIZER_DIR
    from jaxbert.objectives.base import build_objective
    from jaxbert.parallel import maybe_initialize_distributed, process_zero_first
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import write_run_config

    maybe_initialize_distributed(dict(config.get("distributed", {})))
    validate_experiment(config, jax.device_count())  # before anything is written
    workdir = storage.path(workdir)
    storage.check_access(workdir, what="--workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer = process_zero_first(lambda: prepare_tokenizer(config, workdir))
    fit_model_to_tokenizer(config, tokenizer)
    spec = validate_experiment(config, jax.device_count())  # once more: the model now has the tokenizer's vocab
    objective = build_objective(config, tokenizer)
    train_dir, eval_dir = process_zero_first(lambda: prepare_datasets(config, workdir, tokenizer))
    t = spec.train
    loader = make_pretraining_loader(train_dir, t.batch_size, seed=int(config.data.get("shuffle_seed", 0)),
                                     num_threads=int(config.data.get("reader_threads", 2)))
    eval_batches: Callable[[], Iterator[Any]] | None = None
    if eval_dir is not None:
        def eval_batches() -> Iterator[Any]:
            return make_pretraining_loader(eval_dir, t.batch_size, shuffle=False, num_epochs=1,
                                           num_threads=1, prefetch_batches=1)
    start = open_start(config)
    init_params = objective.initial_params(start, jax.random.key(spec.seed)) if start is not None else None
    write_run_config(workdir, config)
    return train(spec, workdir, objective, loader, eval_batches, init_params, tokenizer_dir=TOKENIZER_DIR)
