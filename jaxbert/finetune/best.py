"""Keeping the best fine-tuned model of a run as a jaxbert bundle in WORKDIR/best.

The bundle (config + params + tokenizer files) also holds task.json: the task, its label names,
and the step and metrics it was chosen by. It is written through `jaxbert.formats.write_bundle`: on
local disk a kill mid-save leaves the previous best whole (renamed into place); on gs:// the bundle
is committed by its marker, so a kill mid-save leaves an incomplete best/ that the next save replaces.
`jaxbert.load(WORKDIR)` opens it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from jaxbert import storage
from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.formats import BEST_DIR, TASK_FILE, read_task_info, write_bundle


def _better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


class BestKeeper:
    """Saves the model whenever its eval `metric` improves (`mode` "max" or "min").

    task.json records the task, label names, the step and metrics, and `settings` (how the
    inputs were encoded), so `jaxbert eval` encodes new data the same way.
    """

    def __init__(self, workdir: str | os.PathLike, task: str, metric: str, label_names: Sequence[str] | None = None,
                 tokenizer_dir: str | os.PathLike | None = None, mode: str = "max",
                 settings: Mapping[str, Any] | None = None) -> None:
        if mode not in ("max", "min"):
            raise JaxbertError(f"config.eval.mode={mode!r}; use 'max' or 'min'")
        self.workdir = storage.path(workdir)
        self.task, self.metric, self.mode = task, metric, mode
        self.label_names = list(label_names) if label_names is not None else None
        self.tokenizer_dir = tokenizer_dir
        self.settings = dict(settings or {})  # how inputs were encoded (seq_len, doc_stride...), for `jaxbert eval`
        info = read_task_info(self.workdir / BEST_DIR)
        # A resumed run keeps competing against the best model saved before the interruption.
        self.best: float | None = info.get("value") if info.get("metric") == metric else None
        self.best_step: int | None = info.get("step") if self.best is not None else None

    def update(self, step: int, metrics: Mapping[str, float], config: ModelConfig, params: Any) -> bool:
        """Save `params` as the new best if metrics[metric] beats the best so far; True if it did."""
        if self.metric not in metrics:
            raise JaxbertError(f"config.eval.metric={self.metric!r} is not among the eval metrics "
                               f"({', '.join(sorted(metrics))}); pick one of them")
        value = float(metrics[self.metric])
        if not _better(value, self.best, self.mode):
            return False
        if jax.process_count() > 1:
            # Every process holds the same metrics, so all reach this collective together.
            from jax.experimental import multihost_utils

            params = multihost_utils.process_allgather(params, tiled=True)
        if jax.process_index() == 0:
            self._save(step, value, metrics, config, params)
        self.best, self.best_step = value, step
        return True

    def _save(self, step: int, value: float, metrics: Mapping[str, float], config: ModelConfig, params: Any) -> None:
        info = {"task": self.task, "labels": self.label_names, "metric": self.metric, "mode": self.mode,
                "value": value, "step": int(step), "metrics": {k: float(v) for k, v in metrics.items()},
                "settings": self.settings}
        write_bundle(self.workdir / BEST_DIR, config, jax.device_get(params), tokenizer_dir=self.tokenizer_dir,
                     extra_files={TASK_FILE: info}, replace=True)
