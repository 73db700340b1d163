"""What the experiment commands (pretrain, distill, finetune, compile) share: --config / --workdir flags,
loading the config with its `--config.key=value` overrides, and the one-line JSON summary."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

from jaxbert import storage


def add_config_argument(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("--config", required=True,
                        help=f"ml_collections config file with get_config(), e.g. {example} ('file.py:arg' passes "
                             "arg); any field can be overridden with --config.key=value, e.g. "
                             "--config.train.steps=1000")


def add_workdir_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workdir", required=True, help=f"local path or gs://bucket/path: {what}")


def load_experiment(args: argparse.Namespace) -> Any:
    """The config file of --config with the command line's --config.* overrides applied, logging set up."""
    from jaxbert.logs import setup_logging
    from jaxbert.train.experiment import apply_overrides, load_config

    setup_logging()
    config = load_config(args.config)
    apply_overrides(config, getattr(args, "overrides", []))
    return config


def print_summary(workdir: str, result: Any, shown: Iterable[str]) -> None:
    """One JSON line: workdir, status, step, the chosen last train metrics and the eval metrics."""
    keep = set(shown)
    metrics: Mapping[str, float] = result.metrics
    print(json.dumps({"workdir": str(storage.path(workdir)), "status": result.status, "step": result.step,
                      **{k: round(v, 6) for k, v in metrics.items() if k in keep},
                      **{k: round(v, 6) for k, v in result.eval_metrics.items()}}))


def print_task_summary(task: str, result: Any) -> None:
    """Print a fine-tuning (or task distillation) result as ONE JSON line: best and final metrics, data sizes."""
    print(json.dumps({"workdir": result.workdir, "task": task, "status": result.status,
                      "step": result.step, "best_step": result.best_step,
                      "best": {k: round(v, 6) for k, v in result.best.items()},
                      "final": {k: round(v, 6) for k, v in result.final.items()},
                      "train_rows": result.train_rows, "eval_examples": result.eval_examples,
                      "eval_source": result.eval_source}))
