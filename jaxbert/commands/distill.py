"""`jaxbert distill`: distil a student from a teacher (DistilBERT, Patient KD).

    jaxbert distill --config configs/distill/distilbert_base.py --workdir DIR \\
        --config.objective.teacher=PATH [--config.key=value ...]

On an unlabelled corpus the run is the pretraining pipeline's (`jaxbert.pretrain.distill`); with
objective.task="classification" (Patient KD on a labelled task file, `data.train` / `data.eval` as in
fine-tuning) it is `jaxbert.finetune.distill`'s, and prints fine-tuning's summary.
"""

from __future__ import annotations

import argparse

from jaxbert.commands.experiment import (
    add_config_argument,
    add_workdir_argument,
    load_experiment,
    print_summary,
    print_task_summary,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "configs/distill/distilbert_base.py")
    add_workdir_argument(parser, "checkpoints, metrics.jsonl, tokenizer, data cache and the student's init")


def run(args: argparse.Namespace) -> int:
    from jaxbert.objectives.distill import distils_on_a_task

    config = load_experiment(args)
    if distils_on_a_task(config):
        from jaxbert.finetune.distill import run_task_distillation

        result = run_task_distillation(config, args.workdir)
        print_task_summary(str(config.task.name), result)
        return 0
    from jaxbert.pretrain import run_distillation

    result = run_distillation(config, args.workdir)
    print_summary(args.workdir, result, ("loss", "mlm_accuracy", "accuracy", "ce_loss", "kd_loss", "cos_loss",
                                         "pt_loss"))
    return 0
