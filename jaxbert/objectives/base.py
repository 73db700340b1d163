"""What the objectives share: the batch fields of an encoder, and the registry the pipelines (the face)
find objectives in by name. The interface every objective implements, `Objective`, is the train
loop's (`jaxbert.train.objective`): the loop defines what it needs, the objectives plug into it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from jaxbert.config import ConfigError, ModelConfig
from jaxbert.train.objective import Metrics, ModelPart, Objective, PyTree

__all__ = ["Metrics", "ModelPart", "Objective", "PyTree", "available_objectives", "build_objective", "encoder_fields",
           "get_objective_factory", "register_objective"]


def encoder_fields(config: ModelConfig, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The batch arrays an encoder reads: input_ids, attention_mask, and token_type_ids where it has segments."""
    import numpy as np

    fields: dict[str, tuple[tuple[int, ...], Any]] = {
        "input_ids": ((batch_size, seq_len), np.int32),
        "attention_mask": ((batch_size, seq_len), np.int32),
    }
    if config.type_vocab_size > 0:
        fields["token_type_ids"] = ((batch_size, seq_len), np.int32)
    return fields


ObjectiveFactory = Callable[..., Objective]

_REGISTRY: dict[str, ObjectiveFactory] = {}
# Objectives that live in their own modules register themselves on import; the registry imports
# the module the first time its name is asked for.
_MODULES = {
    "mlm": "jaxbert.objectives.mlm",
    "electra": "jaxbert.objectives.electra",
    "distill": "jaxbert.objectives.distill",
    "pkd": "jaxbert.objectives.distill",
    "finetune": "jaxbert.objectives.finetune",
    "plm": "jaxbert.objectives.plm",
}


def register_objective(name: str, module: str | None = None) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Decorator: make `factory(config, tokenizer=None) -> Objective` available as `name`."""

    def deco(factory: ObjectiveFactory) -> ObjectiveFactory:
        _REGISTRY[name] = factory
        if module:
            _MODULES.setdefault(name, module)
        return factory

    return deco


def available_objectives() -> list[str]:
    """Every name the registry knows (registered, or provided by an importable module)."""
    names = set(_REGISTRY)
    for name, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.add(name)
    return sorted(names)


def get_objective_factory(name: str) -> ObjectiveFactory:
    """The factory registered as `name`; a one-line ConfigError naming config.objective.name if unknown."""
    if name not in _REGISTRY and name in _MODULES and importlib.util.find_spec(_MODULES[name]) is not None:
        importlib.import_module(_MODULES[name])
    if name not in _REGISTRY:
        raise ConfigError(f"config.objective.name: unknown objective {name!r}; "
                          f"available: {', '.join(available_objectives())}")
    return _REGISTRY[name]


def build_objective(config: Any, tokenizer: Any = None) -> Objective:
    """The objective an experiment config names in `config.objective.name`."""
    return get_objective_factory(str(config.objective.name))(config, tokenizer=tokenizer)
