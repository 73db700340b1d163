"""`jaxbert finetune`: fine-tune a pretrained checkpoint on a task (GLUE, SQuAD, CoNLL-2003).

    jaxbert finetune --config configs/finetune/sst2.py --workdir DIR [--config.init=PATH] [--config.key=value ...]

Prints one JSON line: the best and final eval metrics. `jaxbert.load(DIR)` then opens the best
model, and `jaxbert.export_hf` writes it as the matching transformers task model.
"""

from __future__ import annotations

import argparse

from jaxbert.commands.experiment import add_config_argument, add_workdir_argument, load_experiment, print_task_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "configs/finetune/sst2.py")
    add_workdir_argument(parser, "checkpoints, metrics.jsonl, tokenizer and best/ model")


def run(args: argparse.Namespace) -> int:
    from jaxbert.finetune.run import run_finetuning

    config = load_experiment(args)
    result = run_finetuning(config, args.workdir)
    print_task_summary(str(config.task.name), result)
    return 0
