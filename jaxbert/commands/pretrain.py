"""`jaxbert pretrain`: pretrain a model from an experiment config (see `jaxbert.pretrain`).

    jaxbert pretrain --config configs/pretrain/bert_base.py --workdir DIR [--config.key=value ...]
"""

from __future__ import annotations

import argparse

from jaxbert.commands.experiment import add_config_argument, add_workdir_argument, load_experiment, print_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "configs/pretrain/bert_base.py")
    add_workdir_argument(parser, "checkpoints, metrics.jsonl, tokenizer and data cache")


def run(args: argparse.Namespace) -> int:
    from jaxbert.pretrain import run_pretraining

    result = run_pretraining(load_experiment(args), args.workdir)
    print_summary(args.workdir, result, ("loss", "mlm_accuracy"))
    return 0
