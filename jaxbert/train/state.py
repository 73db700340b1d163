"""TrainState: the step counter, trainable params and optimizer state (frozen params live apart)."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """Everything a checkpoint must hold to continue training bit-identically (with the data state)."""

    step: jax.Array
    params: PyTree
    opt_state: PyTree

    def to_dict(self) -> dict[str, PyTree]:
        return {"step": self.step, "params": self.params, "opt_state": self.opt_state}
