"""The Objective plug-in protocol and the registry the loop finds objectives in by name.

An objective owns everything model-specific about training: how to initialise its trainable
params (one model, or several such as {"generator", "discriminator"}), what stays frozen (a
teacher), the loss, which subtree is "the model" a checkpoint exports, and the logical axes of
its params for sharding. The train loop, checkpointing and logging only ever see this protocol.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jaxbert.config import ConfigError, ModelConfig

PyTree = Any
Metrics = dict[str, jax.Array]


class Objective(abc.ABC):
    """What the generic train loop needs from a training objective.

    Subclasses set `name` and `model_config` (the config of the exported model).
    """

    name: str = ""
    model_config: ModelConfig

    @abc.abstractmethod
    def init(self, rng: jax.Array) -> PyTree:
        """Fresh trainable params (plain arrays); jittable, so it can run sharded under jit."""

    @abc.abstractmethod
    def param_axes(self) -> PyTree:
        """Logical PartitionSpecs with the structure of `init(rng)`'s tree."""

    @abc.abstractmethod
    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        """Scalar float32 loss and a dict of scalar metrics (the loss included as "loss")."""

    def params_from_model(self, model_params: PyTree, rng: jax.Array) -> PyTree:
        """The training params of a run that starts from a trained model (config.init) whose params are those of
        `model_config`; objectives that train more than the model they export fill the rest (ELECTRA's
        generator)."""
        del rng
        return model_params

    def init_frozen(self) -> PyTree:
        """Params that are used but never trained (e.g. a distillation teacher), loaded on the host."""
        return {}

    def frozen_axes(self) -> PyTree:
        """Logical PartitionSpecs with the structure of `init_frozen()`'s tree."""
        return {}

    def trainable_mask(self, params: PyTree) -> PyTree | None:
        """A bool tree over params (False = not updated), or None when every param trains."""
        return None

    def export(self, params: PyTree) -> PyTree:
        """The params of "the model" a checkpoint holds (its config is `model_config`)."""
        return params

    def export_axes(self) -> PyTree:
        """Logical PartitionSpecs of `export(params)`."""
        return self.export(self.param_axes())

    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Names, shapes and dtypes of the batch arrays `loss` reads (for ahead-of-time compilation)."""
        import numpy as np

        return {"input_ids": ((batch_size, seq_len), np.int32)}

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """Model FLOPs of one training step (forward + backward) on a batch; 0 when unknown."""
        return 0.0


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
