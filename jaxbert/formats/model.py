"""What opening a model path gives: the model's config and params, where its tokenizer files are, and
what kind of path it was."""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxbert.config import ModelConfig
from jaxbert.storage import Path

PyTree = Any


@dataclasses.dataclass
class LoadedModel:
    """A model read from disk or bucket (see `jaxbert.formats.open_model`)."""

    config: ModelConfig
    params: PyTree
    tokenizer_dir: Path | None  # the directory holding its tokenizer files, when it has any
    source: str  # the path as given
    kind: str  # "bundle" | "hf" | "workdir" | "finetune-workdir"
    label_names: list[str] | None = None  # fine-tuned classifiers and taggers
    task_info: dict[str, Any] = dataclasses.field(default_factory=dict)  # a best-model bundle's task.json
    objective: str | None = None  # workdirs: the objective that trained it
    step: int | None = None  # workdirs: the checkpoint step read
    tokenizer: Any = None  # a tokenizer built with settings no file states (Google TF releases' lowercasing)

    def trained_params(self) -> PyTree:
        """Every tree the objective trained (a workdir's whole params, e.g. ELECTRA's generator and
        discriminator), from the same checkpoint step; for other kinds the model's params."""
        if self.kind != "workdir":
            return self.params
        from jaxbert.formats.workdir import load_training_params

        return load_training_params(self.source, self.step)[1]
