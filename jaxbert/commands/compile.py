"""`jaxbert compile`: ahead-of-time compile a config's train step for a TPU topology; prints ONE JSON line.

    jaxbert compile --config configs/pretrain/bert_large.py:phase2 --topology v5p:4x4x4 [--slices 2] [--max-batch] \\
        [--config.key=value ...]

Runs on any host with libtpu installed (`pip install -e '.[tpu]'`): the TPU compiler itself compiles
exactly the sharded step `jaxbert pretrain | distill | finetune` would run, and reports per-chip
memory, whether it fits, its FLOPs and its estimated step time. `--max-batch` also bisects, one
compile per try, for the largest global batch that fits. Topologies are named as JAX spells them
(v4:2x2x4, v5e:8x8, v5p:4x4x4, v6e:4x4) or as Cloud accelerator types (v4-32, v5litepod-64, v5p-128).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="a pretraining, distillation or fine-tuning config file; 'file.py:arg' passes arg")
    parser.add_argument("--topology", required=True, help="e.g. v5e:8x8, v4:2x2x4, v5p:4x4x4 or v5p-128")
    parser.add_argument("--slices", type=int, default=1, help="slices over DCN (data parallel across them)")
    parser.add_argument("--max-batch", action="store_true", dest="max_batch",
                        help="also find the largest global batch that fits (bisection, one compile per try)")
    parser.add_argument("--hlo", default="", help="write the compiled step's HLO text to this file")


def use_init_model(config: Any) -> None:
    """A fine-tuning config with config.init compiles init's model (with config.model's overrides), as
    `jaxbert finetune` would; without init, config.model (a preset or dict) is the model."""
    if str(config.objective.get("name", "")) != "finetune" or not str(config.get("init", "") or ""):
        return
    from jaxbert.finetune.run import load_start

    base = load_start(config)[0]
    with config.ignore_type():
        config.model = base.to_dict()


def _show_try(report: dict[str, Any]) -> None:
    total = report["per_chip_bytes"]["total"]
    used = f"{total / 2**30:.2f} GiB" if total is not None else "?"
    print(f"jaxbert compile: batch {report['batch']}: {'fits' if report['fits'] else 'does not fit'} "
          f"({used} of {report['hbm_bytes_per_chip'] / 2**30:.2f} GiB per chip, {report['compile_s']:.0f}s)",
          file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from jaxbert.aot import compile_report
    from jaxbert.parallel.topology import parse_topology
    from jaxbert.train.experiment import apply_overrides, load_config

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname).1s %(name)s: %(message)s")
    topology = parse_topology(args.topology, args.slices)
    config = load_config(args.config)
    apply_overrides(config, getattr(args, "overrides", []))
    use_init_model(config)
    report = compile_report(config, topology, search_batch=args.max_batch, on_try=_show_try, hlo_path=args.hlo or None)
    print(json.dumps(report))
    return 0
