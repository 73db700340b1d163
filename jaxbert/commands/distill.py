"""`jaxbert distill`: the pretraining runner with a distillation objective (DistilBERT or Patient KD).

    jaxbert distill --config configs/distill/distilbert_base.py --workdir DIR \\
        --config.objective.teacher=PATH [--config.key=value ...]

Before the first step the student is built from the teacher's layers (objective.init_layers) and
saved as a bundle in WORKDIR/student-init, which the run starts from (config.init). With no
data.tokenizer, a teacher checkpoint's own tokenizer is used. Frequency-smoothed masking
(objective.mask_smoothing > 0) with no objective.token_counts counts the training data's tokens once
into WORKDIR/token_counts.npy. Everything else (tokenizer, dataset, loop, checkpoints, resume) is
`jaxbert pretrain`'s; `jaxbert.load(DIR)` gives the student.

With data.train set (a labelled task file, as in fine-tuning) the run distils on that task instead
(Patient KD with a fine-tuned teacher, objective.task="classification"): see jaxbert.finetune.distill.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from jaxbert.commands.pretrain import add_arguments as _pretrain_arguments
from jaxbert.config import ConfigError

log = logging.getLogger("jaxbert.distill")

DISTILL_OBJECTIVES = ("distill", "pkd")
STUDENT_INIT_DIR = "student-init"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _pretrain_arguments(parser)


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


def has_checkpoint(workdir: Path) -> bool:
    """True when the workdir holds a complete checkpoint (the run will resume from it)."""
    from jaxbert.train.checkpoint import CheckpointError, is_workdir, read_checkpoint_meta

    if not is_workdir(workdir):
        return False
    try:
        read_checkpoint_meta(workdir)
    except CheckpointError:
        return False
    return True


def prepare_token_counts(config: Any, workdir: Path) -> Path | None:
    """Count the training data's token ids into WORKDIR/token_counts.npy (once) when frequency-smoothed
    masking needs counts and the config gives none; sets objective.token_counts to the file."""
    from jaxbert.commands.pretrain import prepare_datasets, prepare_tokenizer
    from jaxbert.data.token_counts import COUNTS_FILE, count_dataset_tokens, save_counts
    from jaxbert.parallel.distributed import process_zero_first

    opts = config.objective
    if float(opts.get("mask_smoothing", 0.0) or 0.0) == 0.0 or str(opts.get("token_counts", "") or ""):
        return None
    target = workdir / COUNTS_FILE

    def build() -> Path:
        if not target.is_file():
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


def prepare_student_init(config: Any, workdir: Path) -> Path | None:
    """Write the teacher-initialised student as a bundle (once) and return it; None when the run resumes,
    starts from config.init, or has init_layers='none'."""
    import jax

    from jaxbert.api import Pretrained
    from jaxbert.commands.pretrain import fit_model_to_tokenizer, prepare_tokenizer
    from jaxbert.objectives.base import build_objective
    from jaxbert.parallel.distributed import process_zero_first

    if config.get("init", "") or has_checkpoint(workdir):
        return None
    target = workdir / STUDENT_INIT_DIR

    def build() -> Path | None:
        if target.is_dir():
            return target
        tokenizer = prepare_tokenizer(config, workdir)
        fit_model_to_tokenizer(config, tokenizer)
        objective = build_objective(config, tokenizer)
        if not objective.init_layers:
            return None
        log.info("student: layers %s of the teacher", list(objective.init_layers))
        params = objective.init_student(jax.random.key(int(config.seed)), objective.teacher.params)
        Pretrained(objective.model_config, params).save(target)
        return target

    workdir.mkdir(parents=True, exist_ok=True)
    return process_zero_first(build)


def distils_on_a_task(config: Any) -> bool:
    """True when the config distils on labelled task data (objective.task="classification") instead of a corpus."""
    return str(config.objective.get("name", "")) == "pkd" and str(config.objective.get("task", "")) == "classification"


def run_distillation(config: Any, workdir: str | os.PathLike) -> Any:
    """The pretraining pipeline with the student started from its teacher; returns the loop's TrainResult.
    On a labelled task, jaxbert.finetune.distill's pipeline instead (returns a FinetuneResult)."""
    from jaxbert.commands.pretrain import run_pretraining
    from jaxbert.objectives.teacher import reuse_loaded_teachers

    name = str(config.objective.get("name", ""))
    if name not in DISTILL_OBJECTIVES:
        raise ConfigError(f"config.objective.name: {name!r} is not a distillation objective; use one of "
                          f"{', '.join(DISTILL_OBJECTIVES)} (or `jaxbert pretrain` for {name})")
    if distils_on_a_task(config):
        from jaxbert.finetune.distill import run_task_distillation

        return run_task_distillation(config, workdir)
    workdir = Path(workdir).absolute()
    with reuse_loaded_teachers():
        use_teacher_tokenizer(config)
        prepare_token_counts(config, workdir)
        init = prepare_student_init(config, workdir)
        if init is not None:
            with config.ignore_type():
                config.init = str(init)
        return run_pretraining(config, workdir)


def run(args: argparse.Namespace) -> int:
    from jaxbert.commands.pretrain import setup_logging
    from jaxbert.train.experiment import apply_overrides, load_config

    setup_logging()
    config = load_config(args.config)
    apply_overrides(config, getattr(args, "overrides", []))
    result = run_distillation(config, args.workdir)
    if distils_on_a_task(config):  # fine-tuning's summary: the task's best and final eval metrics
        print(json.dumps({"workdir": result.workdir, "task": str(config.task.name), "status": result.status,
                          "step": result.step, "best_step": result.best_step,
                          "best": {k: round(v, 6) for k, v in result.best.items()},
                          "final": {k: round(v, 6) for k, v in result.final.items()},
                          "train_rows": result.train_rows, "eval_examples": result.eval_examples}))
        return 0
    shown = ("loss", "mlm_accuracy", "accuracy", "ce_loss", "kd_loss", "cos_loss", "pt_loss")
    summary = {"workdir": str(Path(args.workdir).absolute()), "status": result.status, "step": result.step,
               **{k: round(v, 6) for k, v in result.metrics.items() if k in shown},
               **{k: round(v, 6) for k, v in result.eval_metrics.items()}}
    print(json.dumps(summary))
    return 0
