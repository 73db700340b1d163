"""Distillation: the pretraining pipeline with a distillation objective (DistilBERT or Patient KD).

Before the first step the student is built from the teacher's layers (objective.init_layers) and
saved as a bundle in WORKDIR/student-init, which the run starts from (in place of config.init). With no
data.tokenizer, a teacher checkpoint's own tokenizer is used. Frequency-smoothed masking
(objective.mask_smoothing > 0, DistilBERT's count^-0.7) with no objective.token_counts counts the
training data's token ids once into WORKDIR/token_counts.npy. Everything else (tokenizer, dataset, loop,
checkpoints, resume) is `jaxbert pretrain`'s; `jaxbert.load(DIR)` gives the student.

Patient KD on a labelled task (objective.task="classification") is fine-tuning's pipeline instead:
`jaxbert.finetune.distill`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from jaxbert import storage
from jaxbert.config import ConfigError
from jaxbert.pretrain.pipeline import run_pretraining
from jaxbert.pretrain.tokenizer import fit_model_to_tokenizer, prepare_tokenizer

log = logging.getLogger("jaxbert.distill")

DISTILL_OBJECTIVES = ("distill", "pkd")
STUDENT_INIT_DIR = "student-init"


def use_teacher_tokenizer(config: Any) -> None:
    """Set data.tokenizer to the teacher checkpoint's tokenizer when the config names none."""
    from jaxbert.objectives.teacher import Teacher

    teacher = str(config.objective.get("teacher", "") or "")
    if teacher and not str(config.data.get("tokenizer", "") or ""):
        directory = Teacher(teacher).tokenizer_dir()
        if directory is None:
            raise ConfigError(f"config.data.tokenizer: the teacher {teacher} ships no tokenizer files; "
                              "set data.tokenizer to the teacher's vocabulary directory")
        config.data.tokenizer = directory


def has_checkpoint(workdir: storage.Path) -> bool:
    """True when the workdir holds a complete checkpoint (the run will resume from it)."""
    from jaxbert.formats import WorkdirError, is_workdir, read_checkpoint_meta

    if not is_workdir(workdir):
        return False
    try:
        read_checkpoint_meta(workdir)
    except WorkdirError:
        return False
    return True


def prepare_token_counts(config: Any, workdir: storage.Path) -> storage.Path | None:
    """Count the training data's token ids into WORKDIR/token_counts.npy (once) when frequency-smoothed
    masking needs counts and the config gives none; sets objective.token_counts to the file."""
    from jaxbert.data.token_counts import COUNTS_FILE, count_dataset_tokens, save_counts
    from jaxbert.parallel.distributed import process_zero_first
    from jaxbert.pretrain.datasets import prepare_datasets

    opts = config.objective
    if float(opts.get("mask_smoothing", 0.0) or 0.0) == 0.0 or str(opts.get("token_counts", "") or ""):
        return None
    target = workdir / COUNTS_FILE

    def build() -> storage.Path:
        if not target.exists():
            tokenizer = prepare_tokenizer(config, workdir)
            train_dir, _ = prepare_datasets(config, workdir, tokenizer)
            log.info("counting the token ids of %s for frequency-smoothed masking", train_dir)
            save_counts(count_dataset_tokens(train_dir, int(tokenizer.vocab_size)), target)
        return target

    workdir.mkdir(parents=True, exist_ok=True)
    path = process_zero_first(build)
    with config.ignore_type():
        config.objective.token_counts = str(path)
    return path


def prepare_student_init(config: Any, workdir: storage.Path) -> storage.Path | None:
    """Write the teacher-initialised student as a bundle (once) and return it; None when the run resumes,
    starts from config.init, or has init_layers='none'."""
    import jax

    from jaxbert.formats import is_bundle, write_bundle
    from jaxbert.objectives.base import build_objective
    from jaxbert.parallel.distributed import process_zero_first

    if config.get("init", "") or has_checkpoint(workdir):
        return None
    target = workdir / STUDENT_INIT_DIR

    def build() -> storage.Path | None:
        if is_bundle(target):
            return target
        tokenizer = prepare_tokenizer(config, workdir)
        fit_model_to_tokenizer(config, tokenizer)
        objective = build_objective(config, tokenizer)
        if not objective.init_layers:
            return None
        log.info("student: layers %s of the teacher", list(objective.init_layers))
        params = objective.init_student(jax.random.key(int(config.seed)), objective.teacher.params)
        write_bundle(target, objective.model_config, params)
        return target

    workdir.mkdir(parents=True, exist_ok=True)
    return process_zero_first(build)


def run_distillation(config: Any, workdir: str | os.PathLike) -> Any:
    """The pretraining pipeline with the student started from its teacher; returns the loop's TrainResult."""
    from jaxbert.objectives.distill import distils_on_a_task
    from jaxbert.objectives.teacher import reuse_loaded_teachers

    name = str(config.objective.get("name", ""))
    if name not in DISTILL_OBJECTIVES:
        raise ConfigError(f"config.objective.name: {name!r} is not a distillation objective; use one of "
                          f"{', '.join(DISTILL_OBJECTIVES)} (or `jaxbert pretrain` for {name})")
    if distils_on_a_task(config):
        raise ConfigError("config.objective.task='classification': Patient KD on a labelled task is fine-tuning's "
                          "pipeline; run it with `jaxbert distill` or jaxbert.finetune.distill.run_task_distillation")
    from jaxbert.train.workdir import open_workdir

    workdir = storage.path(workdir)
    storage.check_access(workdir, what="--workdir")
    with open_workdir(workdir, "distill"), reuse_loaded_teachers():
        use_teacher_tokenizer(config)
        prepare_token_counts(config, workdir)
        init = prepare_student_init(config, workdir)
        # The student starts from its bundle; the recorded config keeps config.init as given, so a resumed run
        # (which starts from its checkpoint, not the bundle) records the same config.
        return run_pretraining(config, workdir, init=init)
