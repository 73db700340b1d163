"""The notebook face of jaxbert: load / init a model, run it, embed texts, save bundles, export to HF."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert import formats
from jaxbert.config import ModelConfig, resolve_model_config
from jaxbert.errors import JaxbertError
from jaxbert.model import ModelOutput, build_model, init_params
from jaxbert.storage import Path, path

# The BERT paper's feature-based choices (Table 7) by name; integers index hidden_states
# (0 = embeddings output, L = last layer).
FEATURE_CHOICES = ("embeddings", "last", "second_to_last", "sum_last_four", "concat_last_four", "sum_all")


@functools.partial(jax.jit, static_argnames=("config", "output_hidden_states"))
def _forward(config: ModelConfig, params: Any, input_ids: jax.Array, attention_mask: jax.Array,
             token_type_ids: jax.Array | None, output_hidden_states: bool) -> ModelOutput:
    return build_model(config).apply({"params": params}, input_ids, attention_mask, token_type_ids,
                                     deterministic=True, output_hidden_states=output_hidden_states)


def _bucket(length: int, multiple: int = 16) -> int:
    # Padding to a few fixed lengths bounds the number of compiled shapes.
    return max(multiple, -(-length // multiple) * multiple)


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
        """Forward pass (dropout off). Inputs: numpy or jax int arrays [B, T]; attention_mask 1 = real token."""
        ids = jnp.asarray(input_ids, jnp.int32)
        if ids.ndim != 2:
            raise JaxbertError(f"input_ids must be a [batch, length] array, got shape {tuple(ids.shape)}")
        if ids.shape[1] + self.config.position_offset > self.config.max_position_embeddings:
            raise JaxbertError(f"input length {ids.shape[1]} exceeds the model's max_position_embeddings "
                               f"{self.config.max_position_embeddings}; truncate the inputs")
        mask = jnp.ones_like(ids) if attention_mask is None else jnp.asarray(attention_mask, jnp.int32)
        # No segments given: None, not zeros (XLNet then adds no segment term, as transformers does).
        types = None if token_type_ids is None else jnp.asarray(token_type_ids, jnp.int32)
        return _forward(self.config, self.params, ids, mask, types, output_hidden_states)

    # ---- features & embeddings -----------------------------------------------------
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise JaxbertError("this model has no tokenizer files; load a checkpoint that ships them or pass "
                               "token ids to the model directly")
        return self.tokenizer

    def _max_len(self, max_length: int | None) -> int:
        limit = self.config.max_position_embeddings - self.config.position_offset - (
            1 if self.config.position_offset else 0)
        return min(max_length or 512, limit)

    def _encode(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        enc = self._require_tokenizer()(list(texts), max_length=max_length, padding="longest", truncation=True)
        width = min(_bucket(enc["input_ids"].shape[1]), max_length)
        pad = width - enc["input_ids"].shape[1]
        if pad > 0:
            pad_id = self.tokenizer.special.pad
            enc = {k: np.pad(v, ((0, 0), (0, pad)), constant_values=pad_id if k == "input_ids" else 0)
                   for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        return enc

    def features(self, texts: Sequence[str], layers: str | Sequence[int] = "last", batch_size: int = 32,
                 max_length: int | None = 128) -> list[np.ndarray]:
        """Per-token features of each text ([n_tokens, F] arrays, padding removed).

        layers: one of FEATURE_CHOICES (the BERT paper's feature-based choices) or a list of
        hidden-state indices (0 = embeddings output, L = last layer) whose outputs are concatenated.
        """
        if isinstance(texts, str):
            texts = [texts]
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            enc = self._encode(texts[start:start + batch_size], self._max_len(max_length))
            res = self(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"), output_hidden_states=True)
            feats = np.asarray(combine_layers(res.hidden_states, layers), np.float32)
            for row, mask in zip(feats, enc["attention_mask"], strict=True):
                out.append(row[mask.astype(bool)])
        return out

    def embed(self, texts: Sequence[str], pooling: str = "mean", normalize: bool = False, batch_size: int = 32,
              max_length: int | None = 256) -> np.ndarray:
        """Sentence embeddings [N, H]: pooling mean (over real tokens) | cls | max; optional L2 normalisation."""
        if pooling not in ("mean", "cls", "max"):
            raise JaxbertError(f"unknown pooling {pooling!r}; use mean, cls or max")
        if isinstance(texts, str):
            texts = [texts]
        rows = []
        for start in range(0, len(texts), batch_size):
            enc = self._encode(texts[start:start + batch_size], self._max_len(max_length))
            hidden = self(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids")).last_hidden_state
            rows.append(np.asarray(pool(hidden, jnp.asarray(enc["attention_mask"]), pooling, normalize)))
        if not rows:
            return np.zeros((0, self.config.hidden_size), np.float32)
        return np.concatenate(rows).astype(np.float32)

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write a jaxbert bundle (config + Orbax params + tokenizer files), local or gs://; all or nothing.

        Saving over an existing bundle replaces it; any other non-empty directory is refused."""
        return formats.write_bundle(directory, self.config, self.params, tokenizer_dir=self._tokenizer_dir,
                                    tokenizer=self.tokenizer)


def pool(hidden: jax.Array, mask: jax.Array, pooling: str, normalize: bool = False) -> jax.Array:
    """Pool [B, T, H] hidden states over real tokens (mask 1) into [B, H]."""
    m = mask.astype(jnp.float32)[..., None]
    h = hidden.astype(jnp.float32)
    if pooling == "mean":
        out = (h * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)
    elif pooling == "max":
        out = jnp.where(m > 0, h, -jnp.inf).max(1)
    else:
        out = h[:, 0]
    if normalize:
        out = out / jnp.maximum(jnp.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out


def combine_layers(hidden_states: Sequence[jax.Array], layers: str | Sequence[int]) -> jax.Array:
    """Combine (embeddings, layer 1..L) hidden states per the BERT paper's feature-based choices."""
    hs = list(hidden_states)
    if isinstance(layers, str):
        if layers not in FEATURE_CHOICES:
            raise JaxbertError(f"unknown feature choice {layers!r}; use one of {', '.join(FEATURE_CHOICES)} "
                               "or a list of layer indices")
        if layers == "embeddings":
            return hs[0]
        if layers == "last":
            return hs[-1]
        if layers == "second_to_last":
            return hs[-2]
        if layers == "sum_last_four":
            return sum(hs[-4:])
        if layers == "concat_last_four":
            return jnp.concatenate(hs[-4:], axis=-1)
        return sum(hs[1:])
    idx = list(layers)
    bad = [i for i in idx if not -len(hs) <= i < len(hs)]
    if bad or not idx:
        raise JaxbertError(f"layer indices {idx} out of range: the model has hidden states 0..{len(hs) - 1}")
    return jnp.concatenate([hs[i] for i in idx], axis=-1)


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
