"""What the train loop reads, resolved and validated once from an experiment config into frozen values.

Every default of the `train` and `checkpoint` sections lives here, once: experiment configs start from
`train_section()` / `checkpoint_section()` and the loop reads only a `RunSpec`, never the ConfigDict.
A bad value is a ConfigError whose one line names the field (`config.train.lr: ...`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from jaxbert.config import ConfigError

OPTIMIZERS = ("adamw", "lamb")
SCHEDULES = ("linear", "polynomial", "cosine", "constant")
NAN_POLICIES = ("stop", "skip")


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """Optimizer and learning-rate schedule: linear warmup to `lr`, then `schedule` decay to `end_lr`."""

    lr: float = 1e-4
    warmup_steps: int = 0
    schedule: str = "linear"  # linear (BERT) | polynomial (power) | cosine | constant
    end_lr: float = 0.0
    power: float = 1.0
    optimizer: str = "adamw"  # adamw | lamb
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-6
    weight_decay: float = 0.01  # not applied to LayerNorm params and biases
    clip_norm: float = 1.0  # global-norm clipping; 0 = none


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Steps, shapes, cadence and failure policy of the loop."""

    steps: int = 1000
    batch_size: int = 32  # global
    seq_len: int = 128
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size must divide by it)
    nan_policy: str = "stop"  # stop | skip (a non-finite step is not applied)
    max_consecutive_skips: int = 10  # nan_policy=skip stops after this many non-finite steps in a row
    log_every: int = 100
    eval_every: int = 0  # 0: evaluate only at the last step
    eval_batches: int = 10
    progress: bool = True  # a progress bar on process 0


@dataclasses.dataclass(frozen=True)
class CheckpointSpec:
    every: int = 1000  # save every N steps (and at the last step)
    keep: int = 3  # the newest N checkpoints are kept
    keep_every: int = 0  # also keep every step that is a multiple of this (0: none)
    async_save: bool = True


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything the loop reads: seed, train, optimizer and checkpoint values, the mesh, and the whole
    experiment config as a plain dict (recorded with every checkpoint)."""

    seed: int
    train: TrainSpec
    optimizer: OptimizerSpec
    checkpoint: CheckpointSpec
    mesh: Mapping[str, int]
    experiment: Mapping[str, Any]

    @classmethod
    def from_config(cls, config: Any, num_devices: int | None = None,
                    train_values: Mapping[str, Any] | None = None) -> RunSpec:
        """Resolve and validate the `seed`, `train`, `checkpoint` and `mesh` sections (see module docstring).

        `train_values` are train fields a pipeline derived itself (fine-tuning's steps from epochs); the
        config stays as the user wrote it."""
        for key in ("seed", "train", "checkpoint", "mesh"):
            if key not in config:
                raise ConfigError(f"config.{key}: missing; every experiment config has model, seed, data, train, "
                                  "checkpoint and mesh")
        t, c = {**_section(config, "train"), **(train_values or {})}, _section(config, "checkpoint")
        train = _build(TrainSpec, t, "train")
        optimizer = _build(OptimizerSpec, t, "train")
        checkpoint = _build(CheckpointSpec, c, "checkpoint")
        mesh = {str(k): int(v) for k, v in _section(config, "mesh").items()}
        spec = cls(int(config.seed), train, optimizer, checkpoint, mesh, _plain(config))
        spec.validate(num_devices)
        return spec

    def replace_train(self, **changes: Any) -> RunSpec:
        """A copy with train fields changed (e.g. steps computed from epochs); validated again."""
        optimizer_fields = {f.name for f in dataclasses.fields(OptimizerSpec)}
        opt = {k: v for k, v in changes.items() if k in optimizer_fields}
        train = {k: v for k, v in changes.items() if k not in optimizer_fields}
        spec = dataclasses.replace(self, train=dataclasses.replace(self.train, **train),
                                   optimizer=dataclasses.replace(self.optimizer, **opt))
        spec.validate()
        return spec

    def validate(self, num_devices: int | None = None) -> None:
        t, o, c = self.train, self.optimizer, self.checkpoint
        if not math.isfinite(o.lr) or o.lr <= 0:
            _bad("train.lr", f"must be a positive learning rate, got {o.lr}")
        for field in ("steps", "batch_size", "seq_len", "log_every", "eval_batches"):
            if getattr(t, field) <= 0:
                _bad(f"train.{field}", f"must be a positive integer, got {getattr(t, field)}")
        for field, value in (("train.warmup_steps", o.warmup_steps), ("train.eval_every", t.eval_every),
                             ("train.weight_decay", o.weight_decay), ("train.clip_norm", o.clip_norm),
                             ("train.end_lr", o.end_lr)):
            if value < 0:
                _bad(field, f"must be >= 0, got {value}")
        if o.optimizer not in OPTIMIZERS:
            _bad("train.optimizer", f"unknown optimizer {o.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        if o.schedule not in SCHEDULES:
            _bad("train.schedule", f"unknown schedule {o.schedule!r}; use one of {', '.join(SCHEDULES)}")
        if t.nan_policy not in NAN_POLICIES:
            _bad("train.nan_policy", f"unknown policy {t.nan_policy!r}; use one of {', '.join(NAN_POLICIES)}")
        if t.max_consecutive_skips < 1:
            _bad("train.max_consecutive_skips", f"must be >= 1, got {t.max_consecutive_skips}")
        if t.grad_accum < 1:
            _bad("train.grad_accum", f"must be >= 1, got {t.grad_accum}")
        if t.batch_size % t.grad_accum:
            _bad("train.batch_size", f"{t.batch_size} is not divisible by train.grad_accum={t.grad_accum}")
        if num_devices is not None:
            from jaxbert.parallel.mesh import resolve_mesh_shape

            sizes = resolve_mesh_shape(dict(self.mesh), num_devices)
            dp = sizes["data"] * sizes["fsdp"]
            micro = t.batch_size // t.grad_accum
            if micro % dp:
                _bad("train.batch_size", f"{t.batch_size} (micro-batch {micro}) is not divisible by the "
                     f"data-parallel size {dp} (mesh data x fsdp); use a multiple of {dp * t.grad_accum}")
        if c.every <= 0:
            _bad("checkpoint.every", f"must be a positive number of steps, got {c.every}")
        if c.keep < 1:
            _bad("checkpoint.keep", f"must keep at least 1 checkpoint, got {c.keep}")
        if c.keep_every < 0:
            _bad("checkpoint.keep_every", f"must be >= 0, got {c.keep_every}")


def train_section(**overrides: Any) -> dict[str, Any]:
    """The `train` section of an experiment config: every TrainSpec and OptimizerSpec field with its default,
    `overrides` applied (a recipe's own values)."""
    base = {**dataclasses.asdict(TrainSpec()), **dataclasses.asdict(OptimizerSpec())}
    unknown = sorted(set(overrides) - set(base) - _EXTRA_TRAIN_KEYS)
    if unknown:
        raise ConfigError(f"config.train.{unknown[0]}: no such field; known: {', '.join(sorted(base))}")
    return {**base, **overrides}


def checkpoint_section(**overrides: Any) -> dict[str, Any]:
    """The `checkpoint` section: every CheckpointSpec field with its default, `overrides` applied."""
    return {**dataclasses.asdict(CheckpointSpec()), **overrides}


# Keys some pipelines add to `train` and resolve themselves before the spec is built (fine-tuning's epochs).
_EXTRA_TRAIN_KEYS = {"epochs", "warmup_ratio"}


def _section(config: Any, name: str) -> Mapping[str, Any]:
    value = config[name]
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def _build(cls: type, values: Mapping[str, Any], section: str) -> Any:
    """A spec dataclass from a config section: each field typed like its default, others ignored."""
    out = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        out[field.name] = _typed(values[field.name], type(getattr(cls(), field.name)), f"{section}.{field.name}")
    return cls(**out)


def _typed(value: Any, kind: type, field: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            _bad(field, f"must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _bad(field, f"must be a number, got {value!r}")
        if kind is int and int(value) != value:
            _bad(field, f"must be a whole number, got {value!r}")
        return kind(value)
    return kind(value)


def _plain(config: Any) -> dict[str, Any]:
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def _bad(field: str, message: str) -> None:
    raise ConfigError(f"config.{field}: {message}")
