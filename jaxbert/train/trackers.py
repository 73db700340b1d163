"""Experiment trackers beyond metrics.jsonl and TensorBoard: Weights & Biases (the optional `wandb` extra).

Process 0 alone talks to W&B. The experiment config is the run's config. The run id is kept in the workdir
(WORKDIR/wandb_run.json), so a resumed run continues the same W&B run: its steps carry on from the checkpoint,
and rows a killed run had logged past its last checkpoint are logged again with the same values (W&B keeps
the first of a step's values). W&B's own files go to WORKDIR/wandb, or, for a gs:// workdir, to a local
directory (W&B writes local files only) under the jaxbert cache; WANDB_MODE=offline keeps them there for a
later `wandb sync`.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections.abc import Mapping
from typing import Any

from jaxbert import storage
from jaxbert.config import ConfigError
from jaxbert.train.spec import LogSpec

RUN_FILE = "wandb_run.json"


class WandbTracker:
    """One W&B run per workdir, resumed by id."""

    def __init__(self, workdir: str | os.PathLike, log: LogSpec, config: Mapping[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError("config.log.trackers: wandb needs the optional extra: pip install "
                              "'jaxbert[wandb]' (or drop wandb)") from None
        root = storage.path(workdir)
        record = root / RUN_FILE
        if record.exists():
            run_id = storage.read_json(record)["id"]
        else:
            run_id = secrets.token_hex(4)  # W&B's own ids are 8 characters of [a-z0-9] too
            storage.write_json(record, {"id": run_id, "project": log.wandb_project})
        self.run_id = run_id
        self.run = wandb.init(project=log.wandb_project, entity=log.wandb_entity or None,
                              name=log.wandb_name or root.name, id=run_id, resume="allow",
                              dir=str(wandb_dir(root)), config=dict(config), tags=list(log.wandb_tags) or None,
                              settings=wandb.Settings(console="off"))

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        finite = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if finite:
            self.run.log(finite, step=int(step))

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def wandb_dir(workdir: storage.Path) -> storage.Path:
    """Where W&B writes its files for this workdir (it makes a `wandb/` folder inside)."""
    if not storage.is_url(workdir):
        return workdir
    key = hashlib.sha256(os.fspath(workdir).encode()).hexdigest()[:16]
    local = storage.cache_root() / "wandb" / key
    local.mkdir(parents=True, exist_ok=True)
    return storage.Path(local)


def open_trackers(workdir: str | os.PathLike, log: LogSpec, config: Mapping[str, Any]) -> list[Any]:
    """The trackers `log.trackers` asks for besides jsonl and tensorboard (which MetricsWriter writes)."""
    return [WandbTracker(workdir, log, config)] if "wandb" in log.trackers else []
