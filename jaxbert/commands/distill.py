"""`jaxbert distill`: distil a student from a teacher (DistilBERT, Patient KD; see `jaxbert.pretrain.distill`).

    jaxbert distill --config configs/distill/distilbert_base.py --workdir DIR \\
        --config.objective.teacher=PATH [--config.key=value ...]
"""

from __future__ import annotations

import argparse

from jaxbert.commands.experiment import add_config_argument, add_workdir_argument, load_experiment, print_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "configs/distill/distilbert_base.py")
    add_workdir_argument(parser, "checkpoints, metrics.jsonl, tokenizer, data cache and the student's init")


def run(args: argparse.Namespace) -> int:
    from jaxbert.pretrain import run_distillation

    result = run_distillation(load_experiment(args), args.workdir)
    print_summary(args.workdir, result, ("loss", "mlm_accuracy", "accuracy", "ce_loss", "kd_loss", "cos_loss",
                                         "pt_loss"))
    return 0
