"""Hugging Face save_pretrained directories, local or on gs://, through `jaxbert.interop`'s name tables."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from typing import Any

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.formats.model import LoadedModel
from jaxbert.storage import Path, PathLike, display, is_url, local_copy, path
from jaxbert.tokenize.files import TOKENIZER_FILES, copy_tokenizer_files

CONFIG_FILE = "config.json"
# Read from an HF directory on gs:// (a local copy keyed by content): the config, weights and tokenizer.
_HF_FILES = (CONFIG_FILE, "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
             "pytorch_model.bin.index.json")
PyTree = Any


def is_hf_dir(p: PathLike) -> bool:
    """True for a directory with a config.json naming a model_type and a weights file (safetensors or .bin)."""
    from jaxbert.interop import hf

    directory = path(p)
    if not is_url(directory):
        return hf.is_hf_dir(directory)
    if not (directory / CONFIG_FILE).is_file():
        return False
    try:
        model_type = json.loads((directory / CONFIG_FILE).read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(model_type, str) and any((directory / n).exists() for n in _HF_FILES[1:])


def _local(p: PathLike) -> Path:
    """The directory itself, or (gs://) a local copy of the files jaxbert reads from it."""
    directory = path(p)
    if not is_url(directory):
        return directory
    names = list(_HF_FILES) + list(TOKENIZER_FILES)
    index = next((directory / n for n in _HF_FILES if n.endswith(".index.json") and (directory / n).exists()), None)
    if index is not None:  # sharded weights: the shards the index names
        names += sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
    return Path(local_copy(directory, names))


def read_hf(p: PathLike) -> LoadedModel:
    """Open an HF directory: a pretraining/base model, or a fine-tuned task model with its label names."""
    from jaxbert.interop import hf, hf_tasks

    local = _local(p)
    if hf_tasks.hf_task_of(local):  # a fine-tuned *ForSequenceClassification / QA / TokenClassification
        config, params = hf_tasks.load_hf_task(local)
        labels = hf_tasks.label_names_of(local)
    else:
        config, params = hf.load_hf(local)
        labels = None
    return LoadedModel(config, params, local, display(p), "hf", label_names=labels)


def export_hf(target: PathLike, config: ModelConfig, params: PyTree, tokenizer_dir: PathLike | None = None,
              label_names: Sequence[str] | None = None) -> Path:
    """Write an HF directory at `target` (local or gs://) that transformers loads: the matching
    *ForPreTraining / *ForMaskedLM / task model class, with the tokenizer files.

    An existing non-empty `target` is refused. On gs:// the files are written locally first and uploaded
    with config.json last, so a directory without config.json is an incomplete export.
    """
    from jaxbert.interop import hf, hf_tasks

    dst = path(target)
    if dst.exists() and any(dst.iterdir()):
        raise JaxbertError(f"{display(dst)} already exists and is not empty; remove it or choose another output path")

    def write(directory: Path) -> None:
        if config.task:
            hf_tasks.export_hf_task(config, params, directory, label_names=label_names)
        else:
            hf.export_hf(config, params, directory)
        if tokenizer_dir is not None:
            copy_tokenizer_files(tokenizer_dir, directory)

    if not is_url(dst):
        write(dst)
        return dst
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "hf"
        write(local)
        files = sorted(local.iterdir(), key=lambda f: f.name == CONFIG_FILE)  # config.json last
        for f in files:
            f.copy(dst / f.name, overwrite=True)
    return dst
