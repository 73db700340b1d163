"""Checks an experiment config passes before anything is written or compiled: one line naming the field."""

from __future__ import annotations

from typing import Any

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.objectives.base import get_objective_factory
from jaxbert.train.experiment import model_spec
from jaxbert.train.spec import RunSpec


def _bad(field: str, message: str) -> None:
    raise ConfigError(f"config.{field}: {message}")


def check_seq_len(model: ModelConfig, seq_len: int) -> None:
    """train.seq_len must fit the model's position embeddings (RoBERTa's offset positions included)."""
    limit = model.max_position_embeddings - model.position_offset - (1 if model.position_offset else 0)
    if seq_len > limit:
        _bad("train.seq_len", f"{seq_len} is longer than the model's {limit} positions "
             f"(max_position_embeddings={model.max_position_embeddings}); lower seq_len")


def validate_experiment(config: Any, num_devices: int | None = None) -> RunSpec:
    """Check the keys every training run reads; returns the resolved RunSpec the loop takes.

    Raises a ConfigError whose one line names the field: negative learning rate, batch not
    divisible by the data-parallel size, sequence longer than the positions... (the train, checkpoint
    and mesh sections through `RunSpec.from_config`; the model and objective sections here).
    """
    if "model" not in config or "data" not in config:
        _bad("model" if "model" not in config else "data",
             "missing; every experiment config has model, seed, data, train, checkpoint and mesh")
    spec = RunSpec.from_config(config, num_devices)
    model = resolve_model_config(model_spec(config))
    t = config.train
    check_seq_len(model, spec.train.seq_len)
    if config.get("phase", "") == "phase2" and not config.get("init", ""):
        _bad("init", "phase 2 continues from phase 1's weights; pass --config.init=PHASE1_WORKDIR")
    if "objective" in config:
        get_objective_factory(str(config.objective.name))
        preds = config.objective.get("max_predictions")
        if preds is not None and not 1 <= preds <= t.seq_len:
            _bad("objective.max_predictions", f"must be between 1 and train.seq_len={t.seq_len}, got {preds}")
    return spec
