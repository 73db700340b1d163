"""The fine-tuning pipeline: pretrained model + task data → the one train loop → the best model kept.

Steps: open `config.init` (pretraining heads dropped, a fresh task head added), read and encode
the task's train and eval data (a deterministic held-out part of train where no eval file
exists), run `jaxbert.train.loop.train` with the `finetune` objective, and evaluate the task's
official metrics at the end and every `eval.every` steps, keeping the best model in WORKDIR/best.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jaxbert import formats, storage
from jaxbert.config import ModelConfig, resolve_model_config
from jaxbert.errors import JaxbertError
from jaxbert.finetune.batches import EpochBatches, pack_training_rows
from jaxbert.finetune.best import BestKeeper
from jaxbert.finetune.tasks import (
    EncodedSplit,
    EncodeOptions,
    TaskExamples,
    TaskSpec,
    encode_task,
    get_task,
    held_out_split,
    read_task_file,
)
from jaxbert.formats import BEST_DIR, TOKENIZER_DIR, read_task_info
from jaxbert.objectives.finetune import Finetune, task_model_config
from jaxbert.objectives.masking_setup import packed_examples

log = logging.getLogger("jaxbert.finetune")



@dataclasses.dataclass
class FinetuneData:
    """The encoded train and eval splits of a run, and where the eval data came from."""

    spec: TaskSpec
    train: EncodedSplit
    eval: EncodedSplit
    eval_source: str


@dataclasses.dataclass
class FinetuneResult:
    workdir: str
    status: str
    step: int
    best_step: int | None
    best: dict[str, float]
    final: dict[str, float]
    train_rows: int
    eval_examples: int
    eval_source: str


def encode_options(config: Any) -> EncodeOptions:
    d = config.data
    return EncodeOptions(max_length=int(config.train.seq_len), doc_stride=int(d.get("doc_stride", 128)),
                         max_query_length=int(d.get("max_query_length", 64)),
                         max_answer_length=int(d.get("max_answer_length", 30)),
                         n_best_size=int(d.get("n_best_size", 20)),
                         null_score_diff_threshold=float(d.get("null_score_diff_threshold", 0.0)),
                         on_error=str(d.get("on_error", "raise")))


def _first(examples: TaskExamples, limit: int) -> TaskExamples:
    return examples.subset(examples.items[:limit]) if limit > 0 else examples


def read_splits(config: Any) -> tuple[TaskExamples, TaskExamples, str]:
    """(train, eval, where eval came from) examples of the run's task, before tokenization."""
    spec = get_task(str(config.task.name))
    d = config.data
    on_error = str(d.get("on_error", "raise"))
    if not str(d.get("train", "")):
        raise JaxbertError("config.data.train: no training file; pass --config.data.train=PATH")
    train = read_task_file(spec, str(d.train), on_error)
    eval_path = str(d.get("eval", "") or "")
    if eval_path and storage.path(eval_path).is_file():
        evaluation, source = read_task_file(spec, eval_path, on_error), eval_path
    else:
        size = d.get("eval_size", 0.1)
        train, evaluation = held_out_split(train, size, int(d.get("split_seed", 0)))
        source = f"held out of {d.train} (eval_size={size}, split_seed={int(d.get('split_seed', 0))})"
        if eval_path:
            log.warning("data.eval %s does not exist: evaluating on a part of the training file instead", eval_path)
    train = _first(train, int(d.get("max_train_examples", 0)))
    evaluation = _first(evaluation, int(d.get("max_eval_examples", 0)))
    for name, part in (("train", train), ("eval", evaluation)):
        if part.skipped:
            log.warning("%s data: skipped %s", name, dict(part.skipped))
    return train, evaluation, source


def prepare_data(config: Any, tokenizer: Any) -> FinetuneData:
    """Read and encode the run's train and eval data."""
    train, evaluation, source = read_splits(config)
    opts = encode_options(config)
    return FinetuneData(train.spec, encode_task(train, tokenizer, opts), encode_task(evaluation, tokenizer, opts),
                        source)


@dataclasses.dataclass
class Start:
    """Where a fine-tuning run starts: the base model config (config.init's, with config.model's overrides),
    the pretrained model (None: random init), its tokenizer and where the tokenizer files are."""

    base: ModelConfig
    pretrained: formats.LoadedModel | None
    tokenizer: Any
    tokenizer_dir: storage.Path | None


def load_start(config: Any) -> Start:
    """The start of a fine-tuning run: config.init, or (random init, tests) config.model + data.tokenizer."""
    from jaxbert.tokenize import find_tokenizer, load_tokenizer
    from jaxbert.train.experiment import model_spec

    spec = model_spec(config)
    overrides = dict(spec) if isinstance(spec, Mapping) else {}
    init = str(config.get("init", "") or "")
    if init:
        if isinstance(spec, str) and spec:
            raise JaxbertError(f"config.model={spec!r}: with config.init set, model holds ModelConfig overrides "
                               "(a dict such as {'hidden_dropout': 0.1}), not a preset")
        start = formats.open_model(init)
        tokenizer = find_tokenizer(start.tokenizer_dir) if start.tokenizer_dir is not None else None
        if tokenizer is None:
            raise JaxbertError(f"config.init={init} has no tokenizer files; fine-tuning needs the tokenizer the "
                               "model was trained with (copy vocab.txt / tokenizer.json next to it)")
        base = start.config.replace(**{k: v for k, v in overrides.items() if k != "preset"})
        return Start(base, start, tokenizer, start.tokenizer_dir)
    tok_path = str(config.data.get("tokenizer", "") or "")
    if not tok_path:
        raise JaxbertError("config.init is empty: set it to a pretrained checkpoint, or (random init) give "
                           "config.model and config.data.tokenizer")
    return Start(resolve_model_config(spec), None, load_tokenizer(tok_path), storage.path(tok_path))


def schedule_values(config: Any, train_rows: int) -> dict[str, int]:
    """train.steps from train.epochs when 0, and warmup_steps from warmup_ratio when negative."""
    t = config.train
    steps, warmup = int(t.steps), int(t.get("warmup_steps", -1))
    if steps <= 0:
        epochs = float(t.get("epochs", 3.0))
        if epochs <= 0:
            raise JaxbertError(f"config.train.epochs={epochs}: give a positive number of epochs or train.steps")
        steps = max(1, math.ceil(epochs * train_rows / int(t.batch_size)))
    if warmup < 0:
        ratio = float(t.get("warmup_ratio", 0.1))
        if not 0.0 <= ratio < 1.0:
            raise JaxbertError(f"config.train.warmup_ratio={ratio}: must be in [0, 1)")
        warmup = int(round(ratio * steps))
    return {"steps": steps, "warmup_steps": warmup}


def make_eval_hook(model_config: ModelConfig, data: FinetuneData, keeper: BestKeeper, batch_size: int,
                   mesh: jax.sharding.Mesh) -> Callable[[int, Any], dict[str, float]]:
    """`hook(step, params) -> metrics`: the task's official metrics on the eval data; keeps the best model."""
    from jaxbert.finetune.predict import predict_logits_sharded

    def hook(step: int, params: Any) -> dict[str, float]:
        logits = predict_logits_sharded(model_config, params, data.eval.arrays, batch_size, mesh)
        metrics = {k: float(v) for k, v in data.eval.score(logits).items()}
        if keeper.update(step, metrics, model_config, params):
            log.info("step %d: new best %s=%.4f, saved to %s", step, keeper.metric, keeper.best,
                     keeper.workdir / BEST_DIR)
        metrics["best"] = float(keeper.best) if keeper.best is not None else float("nan")
        return metrics

    return hook


def run_finetuning(config: Any, workdir: str | os.PathLike) -> FinetuneResult:
    """Fine-tune config.init on config.task; resumable; returns the best and final eval metrics.

    The workdir is claimed and locked for the run (`jaxbert.train.workdir`); a resumed run's config must
    match the workdir's (`jaxbert.train.resume`)."""
    from jaxbert.parallel import maybe_initialize_distributed
    from jaxbert.train.workdir import open_workdir

    maybe_initialize_distributed(dict(config.get("distributed", {})))
    workdir = storage.path(workdir)
    storage.check_access(workdir, what="--workdir")
    with open_workdir(workdir, "finetune"):
        return _finetune(config, workdir)


def _finetune(config: Any, workdir: storage.Path) -> FinetuneResult:
    from jaxbert.checks import check_seq_len
    from jaxbert.parallel import create_mesh
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import write_run_config
    from jaxbert.train.resume import check_resume
    from jaxbert.train.spec import RunSpec

    task = get_task(str(config.task.name))
    start = load_start(config)
    data = prepare_data(config, start.tokenizer)  # bad data stops the run here, before anything is written

    # ---- the task model, the resolved run
    dropout = config.task.get("classifier_dropout")
    overrides = {"classifier_dropout": float(dropout)} if dropout is not None else {}
    model_config = task_model_config(start.base, task.kind, task.num_labels(), **overrides)
    packed = packed_examples(config)  # data.pack_examples: several training examples per row
    objective = Finetune(model_config, task.kind, packed=packed)
    train_arrays = data.train.arrays
    if packed:
        train_arrays, shares = pack_training_rows(train_arrays, packed, model_config.pad_token_id)
        log.info("packed %d training rows into %d (padding %.1f%% -> %.1f%%)", shares["rows_before"],
                 shares["rows_after"], 100 * shares["padding_before"], 100 * shares["padding_after"])
    train_rows = int(train_arrays["input_ids"].shape[0])
    spec = RunSpec.from_config(config, jax.device_count(), schedule_values(config, train_rows))
    check_seq_len(model_config, spec.train.seq_len)
    # What the run was: the config as given, with the task model and schedule it resolved to.
    spec = dataclasses.replace(spec, experiment={
        **spec.experiment, "model": model_config.to_dict(),
        "task": {**spec.experiment["task"], "kind": task.kind, "num_labels": model_config.num_labels},
        "train": {**spec.experiment["train"], "steps": spec.train.steps,
                  "warmup_steps": spec.optimizer.warmup_steps}})
    check_resume(workdir, spec.experiment, spec.resume.allow_changes)  # before anything is written

    # ---- workdir: tokenizer, best-model keeping, run config
    if jax.process_index() == 0:
        formats.write_tokenizer_dir(workdir / TOKENIZER_DIR, source_dir=start.tokenizer_dir,
                                    tokenizer=start.tokenizer)
    mesh = create_mesh(dict(spec.mesh))
    keeper = BestKeeper(workdir, task.name, str(config.eval.get("metric", task.metric)), task.label_names(),
                        tokenizer_dir=workdir / TOKENIZER_DIR, mode=str(config.eval.get("mode", "max")),
                        settings=dataclasses.asdict(encode_options(config)))
    hook = make_eval_hook(model_config, data, keeper, int(config.eval.get("batch_size", 64)), mesh)
    init_params = None
    if start.pretrained is not None:
        init_params = objective.initial_params(start.pretrained, jax.random.key(spec.seed))
        if objective.fresh_params:
            log.info("freshly initialised (not in %s): %s", config.init, ", ".join(objective.fresh_params))
    write_run_config(workdir, spec.experiment)

    # ---- train, keeping the best model
    batches = EpochBatches(train_arrays, spec.train.batch_size, seed=int(config.data.get("shuffle_seed", 0)))
    result = train(spec, workdir, objective, batches, None, init_params, tokenizer_dir=TOKENIZER_DIR, mesh=mesh,
                   eval_hook=hook)
    final = {k[len("eval/"):]: v for k, v in result.eval_metrics.items() if k.startswith("eval/")}
    best = {}
    if keeper.best_step is not None:
        best = read_task_info(workdir / BEST_DIR).get("metrics", {})
    return FinetuneResult(str(workdir), result.status, result.step, keeper.best_step, best, final,
                          len(data.train), data.eval.num_examples, data.eval_source)
