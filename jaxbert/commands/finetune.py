"""`jaxbert finetune`: fine-tune a pretrained checkpoint on a task (GLUE, SQuAD, CoNLL-2003).

    jaxbert finetune --config configs/finetune/sst2.py --workdir DIR [--config.init=PATH] [--config.key=value ...]

Prints one JSON line: the best and final eval metrics. `jaxbert.load(DIR)` then opens the best
model, and `jaxbert.export_hf` writes it as the matching transformers task model.
"""

from __future__ import annotations

import argparse
import json

from jaxbert.commands.experiment import add_config_argument, add_workdir_argument, load_experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "configs/finetune/sst2.py")
    add_workdir_argument(parser, "checkpoints, metrics.jsonl, tokenizer and best/ model")


def run(args: argparse.Namespace) -> int:
    from jaxbert.finetune.run import run_finetuning

    config = load_experiment(args)
    result = run_finetuning(config, args.workdir)
    print(json.dumps({"workdir": result.workdir, "task": str(config.task.name), "status": result.status,
                      "step": result.step, "best_step": result.best_step,
                      "best": {k: round(v, 6) for k, v in result.best.items()},
                      "final": {k: round(v, 6) for k, v in result.final.items()},
                      "train_rows": result.train_rows, "eval_examples": result.eval_examples,
                      "eval_source": result.eval_source}))
    return 0
