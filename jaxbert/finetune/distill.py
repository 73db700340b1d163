"""Distillation on a labelled task (Patient KD on GLUE, Sun et al. 2019): a fine-tuned teacher, a shallower
student, the task's data and metric.

What `jaxbert distill` runs when `objective.task == "classification"`. The steps mirror fine-tuning
(jaxbert.finetune.run): read and encode `data.train` / `data.eval` (a held-out part of train when there is
no eval file) with the teacher's tokenizer, train with the `pkd` objective in the one train loop, evaluate
the task's official metric every `train.eval_every` steps and at the end, and keep the best student in
WORKDIR/best (so `jaxbert.load(WORKDIR)` and `jaxbert eval` give it).

The student is the teacher's architecture with `model.num_layers` layers (other ModelConfig fields given in
`model`, e.g. dropout or compute_dtype, override it). It starts from the first layers (objective.init_layers)
of `objective.student_init` — the authors' code takes them from the pretrained BERT the teacher was
fine-tuned from — or, when that is empty, of the teacher; parts the source lacks (a pretrained model's
classifier) start fresh. That starting point is saved as a bundle in WORKDIR/student-init, so fine-tuning
the same student without distillation (`jaxbert finetune --config.init=WORKDIR/student-init`) is the
baseline at equal steps.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.finetune.batches import EpochBatches
from jaxbert.finetune.best import BEST_DIR, BestKeeper, read_task_info
from jaxbert.finetune.run import (
    TOKENIZER_DIR,
    FinetuneResult,
    _copy_tokenizer,
    encode_options,
    fill_schedule,
    make_eval_hook,
    prepare_data,
)
from jaxbert.finetune.tasks import get_task

log = logging.getLogger("jaxbert.distill")

STUDENT_INIT_DIR = "student-init"
# Fields of `model` that describe the corpus-mode student (an MLM model); on a task the teacher's head decides.
_HEAD_FIELDS = ("preset", "heads", "pooler", "task", "num_labels")


def student_config(config: Any, teacher: ModelConfig) -> ModelConfig:
    """The teacher's architecture with the student's overrides from `config.model` (num_layers, dropout...)."""
    from jaxbert.train.experiment import model_spec

    spec = model_spec(config)
    overrides = {k: v for k, v in (dict(spec) if isinstance(spec, Mapping) else {}).items() if k not in _HEAD_FIELDS}
    return teacher.replace(**overrides)


def _source_params(path: str, objective: Any) -> tuple[ModelConfig, Any]:
    """(config, params in scan layout) of the checkpoint whose layers start the student."""
    import jaxbert
    from jaxbert.model import unrolled_to_scan

    if not Path(path).exists():
        raise JaxbertError(f"config.objective.student_init: no such checkpoint {path}; point it at the pretrained "
                           "model the teacher was fine-tuned from, or leave it empty to start from the teacher")
    source = jaxbert.load(path)
    config, params = source.config, source.params
    if not config.scan_layers and config.sharing != "all":
        params = unrolled_to_scan(params, config)
    return config.replace(scan_layers=True, compute_dtype=objective.model_config.compute_dtype), params


def initial_student(config: Any, objective: Any) -> Any:
    """The student's starting params: the chosen layers of objective.student_init (or of the teacher)."""
    from jaxbert.objectives.teacher import init_layer_indices, student_from_teacher

    rng = jax.random.key(int(config.seed))
    source = str(config.objective.get("student_init", "") or "")
    if not source:
        return objective.init_student(rng, objective.teacher.params)
    src_config, src_params = _source_params(source, objective)
    spec = config.objective.get("init_layers", "first")
    spec = spec if isinstance(spec, str) else tuple(int(i) for i in spec)
    layers = init_layer_indices(spec, objective.model_config.num_layers, src_config.num_layers)
    student = objective.model_config

    def build(key: jax.Array, params: Any) -> Any:
        fresh = objective.init(key)
        return student_from_teacher(student, fresh, src_config, params, layers) if layers else fresh

    return jax.jit(build)(rng, src_params)


def prepare_student(config: Any, objective: Any, workdir: Path, tokenizer_dir: Path) -> Any:
    """The start params, saved once as WORKDIR/student-init (a resumed or repeated run reads them back)."""
    import jaxbert
    from jaxbert.api import Pretrained

    target = workdir / STUDENT_INIT_DIR
    if target.is_dir():
        return jaxbert.load(target).params
    params = initial_student(config, objective)
    if jax.process_index() == 0:
        Pretrained(objective.model_config, jax.device_get(params), tokenizer_dir=tokenizer_dir).save(target)
    return params


def run_task_distillation(config: Any, workdir: str | os.PathLike) -> FinetuneResult:
    """Distil a fine-tuned teacher into a shallower student on config.task; returns best and final metrics."""
    import jaxbert
    from jaxbert.objectives.base import build_objective
    from jaxbert.objectives.teacher import Teacher, reuse_loaded_teachers
    from jaxbert.parallel import create_mesh, maybe_initialize_distributed
    from jaxbert.train.experiment import validate_train_config
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import write_run_config

    maybe_initialize_distributed(dict(config.get("distributed", {})))
    workdir = Path(workdir).absolute()
    spec = get_task(str(config.task.name))
    if spec.kind != "classification":
        raise JaxbertError(f"config.task.name={spec.name!r} is a {spec.kind} task; Patient KD's soft targets need "
                           "class probabilities, so distil on a classification task (sst2, mnli, qnli, rte, ...)")
    teacher_path = str(config.objective.get("teacher", "") or "")
    if not teacher_path:
        raise JaxbertError("config.objective.teacher: distilling on a task needs a teacher fine-tuned on it (a "
                           "`jaxbert finetune` workdir, a bundle or a Hugging Face *ForSequenceClassification dir)")
    with reuse_loaded_teachers():
        teacher = Teacher(teacher_path)
        t_config = teacher.config
        if t_config.task != "classification" or t_config.num_labels != spec.num_labels():
            raise JaxbertError(f"config.objective.teacher={teacher_path} has task={t_config.task!r} with "
                               f"{t_config.num_labels} outputs, but {spec.name} needs a classifier of "
                               f"{spec.num_labels()} classes; fine-tune the teacher on {spec.name} first")
        tok_dir = teacher.tokenizer_dir()
        if tok_dir is None:
            raise JaxbertError(f"config.objective.teacher={teacher_path} ships no tokenizer files; the student "
                               "reads the teacher's tokens, so copy them next to the checkpoint")
        tokenizer = jaxbert.load_tokenizer(tok_dir)
        data = prepare_data(config, tokenizer)  # bad data stops the run here, before anything is written
        workdir.mkdir(parents=True, exist_ok=True)
        if jax.process_index() == 0:
            _copy_tokenizer(Path(tok_dir), tokenizer, workdir / TOKENIZER_DIR)
        with config.ignore_type():
            config.model = student_config(config, t_config).to_dict()
        objective = build_objective(config, tokenizer)
        fill_schedule(config, len(data.train))
        validate_train_config(config, jax.device_count())
        mesh = create_mesh(dict(config.mesh))
        model_config = objective.model_config
        keeper = BestKeeper(workdir, spec.name, str(config.eval.get("metric", spec.metric)), spec.label_names(),
                            tokenizer_dir=workdir / TOKENIZER_DIR, mode=str(config.eval.get("mode", "max")),
                            settings=dataclasses.asdict(encode_options(config)))
        hook = make_eval_hook(model_config, data, keeper, int(config.eval.get("batch_size", 64)), mesh)
        init_params = prepare_student(config, objective, workdir, workdir / TOKENIZER_DIR)
        log.info("student: %d layers from %s (layers %s); teacher %s (%d layers)", model_config.num_layers,
                 config.objective.get("student_init", "") or "the teacher", list(objective.init_layers),
                 teacher_path, t_config.num_layers)
        write_run_config(workdir, config)
        batches = EpochBatches(data.train.arrays, int(config.train.batch_size),
                               seed=int(config.data.get("shuffle_seed", 0)))
        result = train(config, workdir, objective, batches, None, init_params, tokenizer_dir=TOKENIZER_DIR,
                       mesh=mesh, eval_hook=hook)
    final = {k[len("eval/"):]: v for k, v in result.eval_metrics.items() if k.startswith("eval/")}
    best = read_task_info(workdir / BEST_DIR).get("metrics", {}) if keeper.best_step is not None else {}
    return FinetuneResult(str(workdir), result.status, result.step, keeper.best_step, best, final,
                          len(data.train), data.eval.num_examples, data.eval_source)
