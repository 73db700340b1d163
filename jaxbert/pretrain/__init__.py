"""Pretraining and distillation as a library: corpus → tokenizer → array_record datasets → the one train loop.

`run_pretraining(config, workdir)` and `run_distillation(config, workdir)` are what `jaxbert pretrain`,
`jaxbert distill` and the quick start call; fine-tuning's pipeline is its sibling `jaxbert.finetune.run`.
"""

from jaxbert.pretrain.distill import run_distillation
from jaxbert.pretrain.pipeline import run_pretraining

__all__ = ["run_distillation", "run_pretraining"]
