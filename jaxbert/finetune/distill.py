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
from typing import Any

import jax

from jaxbert import formats, storage
from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.finetune.batches import EpochBatches
from jaxbert.finetune.best import BestKeeper
from jaxbert.finetune.run import FinetuneResult, encode_options, make_eval_hook, prepare_data, schedule_values
from jaxbert.finetune.tasks import get_task
from jaxbert.formats import BEST_DIR, TOKENIZER_DIR, read_task_info

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


def _source_params(source: str, objective: Any) -> tuple[ModelConfig, Any]:
    """(config, params in scan layout) of the checkpoint whose layers start the student."""
    from jaxbert.model import unrolled_to_scan

    storage.check_access(source, what="config.objective.student_init")
    if not storage.path(source).exists():
        raise JaxbertError(f"config.objective.student_init: no such checkpoint {source}; point it at the pretrained "
                           "model the teacher was fine-tuned from, or leave it empty to start from the teacher")
    loaded = formats.open_model(source)
    config, params = loaded.config, loaded.params
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


def prepare_student(config: Any, objective: Any, workdir: storage.Path, tokenizer_dir: storage.Path) -> Any:
    """The start params, saved once as WORKDIR/student-init (a resumed or repeated run reads them back)."""
    target = workdir / STUDENT_INIT_DIR
    if formats.is_bundle(target):
        return formats.open_model(target).params
    params = initial_student(config, objective)
    if jax.process_index() == 0:
        formats.write_bundle(target, objective.model_config, jax.device_get(params), tokenizer_dir=tokenizer_dir)
    return params


def _teacher_of(path: str, task: Any) -> tuple[Any, Any, storage.Path]:
    """(Teacher, its tokenizer, its tokenizer dir), checked to be a classifier of the task's classes."""
    from jaxbert.objectives.teacher import Teacher
    from jaxbert.tokenize import load_tokenizer

    if not path:
        raise JaxbertError("config.objective.teacher: distilling on a task needs a teacher fine-tuned on it (a "
                           "`jaxbert finetune` workdir, a bundle or a Hugging Face *ForSequenceClassification dir)")
    teacher = Teacher(path)
    t_config = teacher.config
    if t_config.task != "classification" or t_config.num_labels != task.num_labels():
        raise JaxbertError(f"config.objective.teacher={path} has task={t_config.task!r} with {t_config.num_labels} "
                           f"outputs, but {task.name} needs a classifier of {task.num_labels()} classes; fine-tune "
                           f"the teacher on {task.name} first")
    tok_dir = teacher.tokenizer_dir()
    if tok_dir is None:
        raise JaxbertError(f"config.objective.teacher={path} ships no tokenizer files; the student reads the "
                           "teacher's tokens, so copy them next to the checkpoint")
    return teacher, load_tokenizer(tok_dir), storage.path(tok_dir)


def run_task_distillation(config: Any, workdir: str | os.PathLike) -> FinetuneResult:
    """Distil a fine-tuned teacher into a shallower student on config.task; returns best and final metrics.

    The workdir is claimed and locked for the run, and a resumed run's config must match the workdir's,
    as in fine-tuning (`jaxbert.train.workdir`, `jaxbert.train.resume`)."""
    from jaxbert.parallel import maybe_initialize_distributed
    from jaxbert.train.workdir import open_workdir

    maybe_initialize_distributed(dict(config.get("distributed", {})))
    workdir = storage.path(workdir)
    storage.check_access(workdir, what="--workdir")
    with open_workdir(workdir, "distill"):  # claimed and locked as fine-tuning's and pretraining's are
        return _distil_on_task(config, workdir)


def _distil_on_task(config: Any, workdir: storage.Path) -> FinetuneResult:
    from jaxbert.checks import check_seq_len
    from jaxbert.objectives.base import build_objective
    from jaxbert.objectives.teacher import reuse_loaded_teachers
    from jaxbert.parallel import create_mesh
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import write_run_config
    from jaxbert.train.resume import check_resume
    from jaxbert.train.spec import RunSpec

    task = get_task(str(config.task.name))
    if task.kind != "classification":
        raise JaxbertError(f"config.task.name={task.name!r} is a {task.kind} task; Patient KD's soft targets need "
                           "class probabilities, so distil on a classification task (sst2, mnli, qnli, rte, ...)")
    with reuse_loaded_teachers():
        teacher_path = str(config.objective.get("teacher", "") or "")
        teacher, tokenizer, tok_dir = _teacher_of(teacher_path, task)
        data = prepare_data(config, tokenizer)  # bad data stops the run here, before anything is written

        # ---- the student, the objective, the resolved run
        with config.ignore_type():
            config.model = student_config(config, teacher.config).to_dict()
        objective = build_objective(config, tokenizer)
        model_config = objective.model_config
        spec = RunSpec.from_config(config, jax.device_count(), schedule_values(config, len(data.train)))
        check_seq_len(model_config, spec.train.seq_len)
        spec = dataclasses.replace(spec, experiment={
            **spec.experiment, "train": {**spec.experiment["train"], "steps": spec.train.steps,
                                         "warmup_steps": spec.optimizer.warmup_steps}})
        check_resume(workdir, spec.experiment, spec.resume.allow_changes)  # before anything is written

        # ---- workdir: tokenizer, the student's start, best-model keeping, run config
        workdir.mkdir(parents=True, exist_ok=True)
        if jax.process_index() == 0:
            formats.write_tokenizer_dir(workdir / TOKENIZER_DIR, source_dir=tok_dir, tokenizer=tokenizer)
        mesh = create_mesh(dict(spec.mesh))
        keeper = BestKeeper(workdir, task.name, str(config.eval.get("metric", task.metric)), task.label_names(),
                            tokenizer_dir=workdir / TOKENIZER_DIR, mode=str(config.eval.get("mode", "max")),
                            settings=dataclasses.asdict(encode_options(config)))
        hook = make_eval_hook(model_config, data, keeper, int(config.eval.get("batch_size", 64)), mesh)
        init_params = prepare_student(config, objective, workdir, workdir / TOKENIZER_DIR)
        log.info("student: %d layers from %s (layers %s); teacher %s (%d layers)", model_config.num_layers,
                 config.objective.get("student_init", "") or "the teacher", list(objective.init_layers),
                 teacher_path, teacher.config.num_layers)
        write_run_config(workdir, spec.experiment)

        # ---- train, keeping the best student
        batches = EpochBatches(data.train.arrays, spec.train.batch_size, seed=int(config.data.get("shuffle_seed", 0)))
        result = train(spec, workdir, objective, batches, None, init_params, tokenizer_dir=TOKENIZER_DIR,
                       mesh=mesh, eval_hook=hook)
    final = {k[len("eval/"):]: v for k, v in result.eval_metrics.items() if k.startswith("eval/")}
    best = read_task_info(workdir / BEST_DIR).get("metrics", {}) if keeper.best_step is not None else {}
    return FinetuneResult(str(workdir), result.status, result.step, keeper.best_step, best, final,
                          len(data.train), data.eval.num_examples, data.eval_source)
