"""The interface the one train loop needs from a training objective.

An objective owns everything model-specific about training: how to initialise its trainable
params (one model, or several such as {"generator", "discriminator"}), how to start them from a
trained model, what stays frozen (a teacher), the loss, which subtree is "the model" a checkpoint
exports, the logical axes of its params for sharding, and which metrics it headlines. The loop,
checkpointing and logging only ever see this interface; the objectives (`jaxbert.objectives`) plug in.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

from jaxbert.config import ModelConfig

PyTree = Any
Metrics = dict[str, jax.Array]
TreePath = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ModelPart:
    """One model inside an objective's trainable params, for objectives that train several (ELECTRA).

    `path` is the subtree holding it; `borrowed` pairs (its own path, the path in the trainable params)
    for tables it shares with another part (ELECTRA's generator reads the discriminator's embeddings).
    Checkpoints record parts as JSON (`to_json`), so a workdir's parts load without the objective.
    """

    config: ModelConfig
    path: TreePath
    borrowed: tuple[tuple[TreePath, TreePath], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"model_config": self.config.to_dict(), "path": list(self.path),
                "borrowed": [[list(own), list(source)] for own, source in self.borrowed]}


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

    def initial_params(self, start: Any, rng: jax.Array) -> PyTree:
        """The params of a run that starts from a trained model (`start`: a `jaxbert.formats.LoadedModel`
        opened from config.init) — the one way a run starts from a checkpoint.

        A workdir this objective trained gives back every tree it trained (ELECTRA's generator too) when the
        shapes match; otherwise the model's params must be those of `model_config` (a one-line error names
        the first differing parameter) and `params_from_model` fills in what the model lacks.
        """
        from jaxbert.model import check_params

        if start.kind == "workdir" and start.objective == self.name:
            trained = start.trained_params()
            if _same_shapes(trained, jax.eval_shape(self.init, rng)):
                return trained
        check_params(self.model_config, start.params, source=start.source)
        return self.params_from_model(start.params, rng)

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

    def parts(self) -> dict[str, ModelPart]:
        """The models a checkpoint holds, by name, when there are several (else {}: just `export`)."""
        return {}

    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Names, shapes and dtypes of the batch arrays `loss` reads (for ahead-of-time compilation)."""
        import numpy as np

        return {"input_ids": ((batch_size, seq_len), np.int32)}

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """Model FLOPs of one training step (forward + backward) on a batch; 0 when unknown."""
        return 0.0

    def progress_metrics(self) -> tuple[str, ...]:
        """The metric names the progress bar shows (the loss and the objective's headline figures)."""
        return ("loss",)


def _same_shapes(a: PyTree, b: PyTree) -> bool:
    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and shapes(a) == shapes(b)
