"""The notebook face of jaxbert: load / init a model, run it, embed texts, save bundles, export to HF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxbert import formats, inference
from jaxbert.config import ModelConfig, resolve_model_config
from jaxbert.errors import JaxbertError
from jaxbert.inference import FEATURE_CHOICES, combine_layers, pool
from jaxbert.model import ModelOutput, init_params
from jaxbert.storage import Path, path

__all__ = ["FEATURE_CHOICES", "Pretrained", "combine_layers", "export_hf", "init", "load", "load_tokenizer", "pool"]

class Pretrained:
    """A model (config + params) with its tokenizer, callable like the reference models."""

    def __init__(self, config: ModelConfig, params: Any, tokenizer: Any = None,
                 tokenizer_dir: str | os.PathLike | None = None) -> None:
        self.config = config
        self.params = params
        self.tokenizer = tokenizer
        self._tokenizer_dir = path(tokenizer_dir) if tokenizer_dir else None
        self.label_names: list[str] | None = None  # a fine-tuned classifier's or tagger's labels
        self.task_info: dict[str, Any] = {}  # a fine-tuning workdir's best model: its task.json

    def __repr__(self) -> str:
        return (f"Pretrained(family={self.config.family!r}, layers={self.config.num_layers}, "
                f"hidden={self.config.hidden_size}, heads={self.config.heads}, tokenizer={self.tokenizer is not None})")

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                 output_hidden_states: bool = False) -> ModelOutput:
        """Forward pass (dropout off). Inputs: numpy or jax int arrays [B, T]; attention_mask 1 = real token.

        Batches run padded to power-of-two rows and tokens (at least 16), so a session compiles one
        program per such bucket rather than per shape; outputs are cut back to [B, T].
        """
        return inference.forward(self.config, self.params, input_ids, attention_mask, token_type_ids,
                                 output_hidden_states, pad_token_id=self.config.pad_token_id)

    # ---- features & embeddings -----------------------------------------------------
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise JaxbertError("this model has no tokenizer files; load a checkpoint that ships them or pass "
                               "token ids to the model directly")
        return self.tokenizer

    def _max_len(self, max_length: int | None) -> int:
        return min(max_length or 512, inference.max_input_length(self.config))

    def features(self, texts: Sequence[str], layers: str | Sequence[int] = "last", batch_size: int = 32,
                 max_length: int | None = 128) -> list[np.ndarray]:
        """Per-token features of each text ([n_tokens, F] arrays, padding removed).

        layers: one of FEATURE_CHOICES (the BERT paper's feature-based choices) or a list of
        hidden-state indices (0 = embeddings output, L = last layer) whose outputs are concatenated.
        Batches are padded to power-of-four rows (up to batch_size) and power-of-two tokens (at least
        32), so a session compiles a handful of shapes, not one per call (see jaxbert.inference).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        return inference.features(self.config, self.params, self._require_tokenizer(), texts, layers, batch_size,
                                  self._max_len(max_length))

    def embed(self, texts: Sequence[str], pooling: str = "mean", normalize: bool = False, batch_size: int = 32,
              max_length: int | None = 256) -> np.ndarray:
        """Sentence embeddings [N, H]: pooling mean (over real tokens) | cls | max; optional L2 normalisation.

        Batches are padded to power-of-four rows (1, 4, 16, up to batch_size) and power-of-two tokens
        (at least 32), so calls on 1..64 texts compile about six programs, not one per batch size.
        """
        if pooling not in ("mean", "cls", "max"):
            raise JaxbertError(f"unknown pooling {pooling!r}; use mean, cls or max")
        texts = [texts] if isinstance(texts, str) else list(texts)
        return inference.embed(self.config, self.params, self._require_tokenizer(), texts, pooling, normalize,
                               batch_size, self._max_len(max_length))

    def fill_mask(self, texts: str | Sequence[str], top_k: int = 5, batch_size: int = 32,
                  max_length: int | None = None) -> list[list[list[tuple[str, float]]]]:
        """For each text, for each mask token in it (the tokenizer's own: [MASK], <mask>), the `top_k`
        (token, probability) pairs, best first: `p.fill_mask(["Paris is the [MASK] of France."])[0][0]`.

        Needs an MLM head (BERT, RoBERTa, ALBERT, DistilBERT, an ELECTRA generator); compiles per
        bucket of rows and tokens, as `embed` does.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        return inference.fill_mask(self.config, self.params, self._require_tokenizer(), texts, top_k, batch_size,
                                   self._max_len(max_length))

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write a jaxbert bundle (config + Orbax params + tokenizer files), local or gs://; all or nothing.

        Saving over an existing bundle replaces it; any other non-empty directory is refused."""
        return formats.write_bundle(directory, self.config, self.params, tokenizer_dir=self._tokenizer_dir,
                                    tokenizer=self.tokenizer)


# ---- entry points ------------------------------------------------------------------
def load_tokenizer(path: str | os.PathLike) -> Any:
    """A tokenizer from a directory of tokenizer files (HF or jaxbert); same call form as p.tokenizer."""
    from jaxbert.tokenize import load_tokenizer as _load

    return _load(str(path))


def _find_tokenizer(directory: Path | None) -> Any:
    from jaxbert.tokenize import find_tokenizer

    return find_tokenizer(directory) if directory is not None else None


def _pretrained(loaded: formats.LoadedModel) -> Pretrained:
    tokenizer = loaded.tokenizer if loaded.tokenizer is not None else _find_tokenizer(loaded.tokenizer_dir)
    model = Pretrained(loaded.config, loaded.params, tokenizer, tokenizer_dir=loaded.tokenizer_dir)
    model.label_names = loaded.label_names
    model.task_info = loaded.task_info
    return model


def load(path: str | os.PathLike, part: str | None = None,
         config: str | os.PathLike | ModelConfig | None = None) -> Pretrained:
    """Open a jaxbert bundle, a training workdir (its latest checkpoint), a Hugging Face save_pretrained dir
    (local or gs://) or a Google TensorFlow checkpoint (BERT, ALBERT, ELECTRA: its directory, prefix or .index).

    part: which model of a checkpoint that holds two: ELECTRA's "discriminator" (the default) or "generator",
    in a training workdir or a TF checkpoint. config: the architecture of a TF checkpoint with no config file
    beside it (ELECTRA's releases): a preset name, a ModelConfig or a config.json path.
    """
    return _pretrained(formats.open_model(path, part=part, config=config))


def init(model: str | ModelConfig | dict, seed: int = 0, tokenizer: str | os.PathLike | None = None) -> Pretrained:
    """A freshly initialised model (encoder + the family's pretraining heads) from a preset name or config."""
    config = resolve_model_config(model)
    tok = load_tokenizer(tokenizer) if tokenizer else None
    return Pretrained(config, init_params(config, seed), tok, tokenizer_dir=tokenizer)


def export_hf(p: Pretrained, directory: str | os.PathLike) -> Path:
    """Write a Hugging Face directory (config.json + model.safetensors + tokenizer files) transformers loads;
    a fine-tuned model becomes the matching *For{SequenceClassification,QuestionAnswering,...} model."""
    import contextlib
    import tempfile

    with contextlib.ExitStack() as stack:
        tokenizer_dir = p._tokenizer_dir
        if tokenizer_dir is None and p.tokenizer is not None:  # a tokenizer object: its files via save()
            tokenizer_dir = stack.enter_context(tempfile.TemporaryDirectory())
            p.tokenizer.save(tokenizer_dir)
        return formats.export_hf(directory, p.config, jax.device_get(p.params), tokenizer_dir=tokenizer_dir,
                                 label_names=p.label_names)
