"""jaxbert: the BERT family (BERT, RoBERTa, ALBERT, ELECTRA, DistilBERT) in JAX/Flax."""

from __future__ import annotations

from typing import Any

from jaxbert.config import PRESETS, ConfigError, ModelConfig, get_preset
from jaxbert.errors import JaxbertError

__version__ = "0.1.0"

_LAZY = {
    "load": "jaxbert.api",
    "init": "jaxbert.api",
    "export_hf": "jaxbert.api",
    "load_tokenizer": "jaxbert.api",
    "Pretrained": "jaxbert.api",
}


def __getattr__(name: str) -> Any:
    # The heavy imports (jax, flax, orbax) wait until the API is used.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxbert' has no attribute {name!r}")


__all__ = ["PRESETS", "ConfigError", "JaxbertError", "ModelConfig", "get_preset", *_LAZY]
