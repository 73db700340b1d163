"""Training objectives as plug-ins: the Objective protocol and a registry of them by name.

mlm (BERT MLM+NSP, RoBERTa MLM, ALBERT MLM+SOP), electra, distill / pkd, plm (XLNet's permutation LM)
and the fine-tuning tasks register themselves; `build_objective(config, tokenizer)` finds one by config.objective.name.
"""

from jaxbert.objectives.base import (
    Objective,
    available_objectives,
    build_objective,
    get_objective_factory,
    register_objective,
)

__all__ = ["Objective", "available_objectives", "build_objective", "get_objective_factory", "register_objective"]
