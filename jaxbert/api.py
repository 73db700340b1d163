"""The notebook face of jaxbert: load / init a model, run it, embed texts, save bundles, export to HF."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig, resolve_model_config
from jaxbert.errors import JaxbertError
from jaxbert.model import ModelOutput, check_params, init_params

BUNDLE_FILE = "jaxbert.json"
BUNDLE_FORMAT = "jaxbert-bundle"
PARAMS_DIR = "params"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "spiece.model")

# The BERT paper's feature-based choices (Table 7) by name; integers index hidden_states
# (0 = embeddings output, L = last layer).
FEATURE_CHOICES = ("embeddings", "last", "second_to_last", "sum_last_four", "concat_last_four", "sum_all")


class Pretrained:
    """A model (config + params) with its tokenizer, callable like the reference models."""

    def __init__(self, config: ModelConfig, params: Any, tokenizer: Any = None,
                 tokenizer_dir: str | os.PathLike | None = None) -> None:
        self.config = config
        self.params = params
        self.tokenizer = tokenizer
        self._tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else None

    def __repr__(self) -> str:
        return (f"Pretrained(family={self.config.family!r}, layers={self.config.num_layers}, "
                f"hidden={self.config.hidden_size}, heads={self.config.heads}, tokenizer={self.tokenizer is not None})")

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                 output_hidden_states: bool = False) -> ModelOutput:
        """Forward pass (dropout off). Inputs: numpy or jax int arrays [B, T]; attention_mask 1 = real token.

        Batches run padded to power-of-two rows and tokens (at least 16), so a session compiles one
        program per such bucket rather than per shape; outputs are cut back to [B, T].
        """
        from jaxbert import inference

        return inference.forward(self.config, self.params, input_ids, attention_mask, token_type_ids,
                                 output_hidden_states, pad_token_id=self.config.pad_token_id)

    # ---- features & embeddings -----------------------------------------------------
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise JaxbertError("this model has no tokenizer files; load a checkpoint that ships them or pass "
                               "token ids to the model directly")
        return self.tokenizer

    def _max_len(self, max_length: int | None) -> int:
        from jaxbert.inference import max_input_length

        return min(max_length or 512, max_input_length(self.config))

    def features(self, texts: Sequence[str], layers: str | Sequence[int] = "last", batch_size: int = 32,
                 max_length: int | None = 128) -> list[np.ndarray]:
        """Per-token features of each text ([n_tokens, F] arrays, padding removed).

        layers: one of FEATURE_CHOICES (the BERT paper's feature-based choices) or a list of
        hidden-state indices (0 = embeddings output, L = last layer) whose outputs are concatenated.
        Batches are padded to power-of-four rows (up to batch_size) and power-of-two tokens (at least
        32), so a session compiles a handful of shapes, not one per call (see jaxbert.inference).
        """
        from jaxbert import inference

        texts = [texts] if isinstance(texts, str) else list(texts)
        return inference.features(self.config, self.params, self._require_tokenizer(), texts, layers, batch_size,
                                  self._max_len(max_length))

    def embed(self, texts: Sequence[str], pooling: str = "mean", normalize: bool = False, batch_size: int = 32,
              max_length: int | None = 256) -> np.ndarray:
        """Sentence embeddings [N, H]: pooling mean (over real tokens) | cls | max; optional L2 normalisation.

        Batches are padded to power-of-four rows (1, 4, 16, up to batch_size) and power-of-two tokens
        (at least 32), so calls on 1..64 texts compile about six programs, not one per batch size.
        """
        from jaxbert import inference

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
        from jaxbert import inference

        texts = [texts] if isinstance(texts, str) else list(texts)
        return inference.fill_mask(self.config, self.params, self._require_tokenizer(), texts, top_k, batch_size,
                                   self._max_len(max_length))

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write a jaxbert bundle (config + Orbax params + tokenizer files); atomic: all or nothing."""
        import orbax.checkpoint as ocp

        target = Path(directory).absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            (staging / BUNDLE_FILE).write_text(json.dumps(
                {"format": BUNDLE_FORMAT, "version": 1, "model_config": self.config.to_dict()}, indent=2))
            # A bundle is written by one process (process 0 of a multi-host run saves the best model alone):
            # Orbax must not wait at barriers for processes that are not saving.
            me = jax.process_index()
            ckpt = ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"jaxbert-bundle-{me}"))
            ckpt.save(staging / PARAMS_DIR, jax.device_get(self.params))
            ckpt.wait_until_finished()
            self._save_tokenizer(staging)
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _save_tokenizer(self, directory: Path) -> None:
        if self._tokenizer_dir is not None:
            for name in TOKENIZER_FILES:
                if (self._tokenizer_dir / name).is_file():
                    shutil.copy2(self._tokenizer_dir / name, directory / name)
        elif self.tokenizer is not None:
            self.tokenizer.save(str(directory))


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


def _replace_dir(staging: Path, target: Path) -> None:
    """Move a finished staging dir onto target; an existing target is replaced only after the new one is whole."""
    if target.exists():
        if not (target / BUNDLE_FILE).is_file() and any(target.iterdir()):
            raise JaxbertError(f"{target} exists and is not a jaxbert bundle; choose an empty or new directory")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


# ---- entry points ------------------------------------------------------------------
def load_tokenizer(path: str | os.PathLike) -> Any:
    """A tokenizer from a directory of tokenizer files (HF or jaxbert); same call form as p.tokenizer."""
    from jaxbert.tokenize import load_tokenizer as _load

    return _load(str(path))


def _find_tokenizer(path: Path) -> Any:
    from jaxbert.tokenize import find_tokenizer

    return find_tokenizer(str(path))


def _load_bundle(path: Path) -> Pretrained:
    import orbax.checkpoint as ocp

    try:
        meta = json.loads((path / BUNDLE_FILE).read_text())
        config = ModelConfig.from_dict(meta["model_config"])
    except (OSError, ValueError, KeyError) as e:
        raise JaxbertError(f"{path / BUNDLE_FILE} is unreadable or corrupt ({e}); re-save the bundle") from e
    if not (path / PARAMS_DIR).is_dir():
        raise JaxbertError(f"{path} has no {PARAMS_DIR}/ directory; the bundle is incomplete, re-save it")
    from jaxbert.model import param_shapes

    try:
        abstract = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), param_shapes(config))
        params = ocp.StandardCheckpointer().restore((path / PARAMS_DIR).absolute(), abstract)
    except Exception as e:  # orbax raises many types for damaged files; all mean the same to a user
        raise JaxbertError(f"cannot read the params of bundle {path}: {str(e).splitlines()[0]}; "
                           "the bundle is corrupt or does not match its config") from e
    check_params(config, params, source=str(path))
    return Pretrained(config, params, _find_tokenizer(path), tokenizer_dir=path)


def load(path: str | os.PathLike) -> Pretrained:
    """Open a jaxbert bundle, a training workdir (its latest checkpoint) or a Hugging Face save_pretrained dir."""
    p = Path(path)
    if not p.exists():
        raise JaxbertError(f"no such checkpoint path: {p}")
    if (p / BUNDLE_FILE).is_file():
        return _load_bundle(p)
    from jaxbert.interop import hf

    if hf.is_hf_dir(p):
        from jaxbert.interop import hf_tasks

        if hf_tasks.hf_task_of(p):  # a fine-tuned *ForSequenceClassification / QA / TokenClassification
            config, params = hf_tasks.load_hf_task(p)
            model = Pretrained(config, params, _find_tokenizer(p), tokenizer_dir=p)
            model.label_names = hf_tasks.label_names_of(p)
            return model
        config, params = hf.load_hf(p)
        return Pretrained(config, params, _find_tokenizer(p), tokenizer_dir=p)
    from jaxbert.finetune.best import BEST_DIR, load_best

    if (p / BEST_DIR / BUNDLE_FILE).is_file():  # a fine-tuning workdir: its best model, not its last step
        return load_best(p)
    from jaxbert.train.checkpoint import is_workdir, load_model_from_workdir

    if is_workdir(p):
        config, params, tok_dir = load_model_from_workdir(p)
        tokenizer = _find_tokenizer(Path(tok_dir)) if tok_dir else None
        return Pretrained(config, params, tokenizer, tokenizer_dir=tok_dir)
    raise JaxbertError(f"{p} is neither a jaxbert bundle ({BUNDLE_FILE}), a Hugging Face directory "
                       "(config.json + model.safetensors) nor a training workdir")


def init(model: str | ModelConfig | dict, seed: int = 0, tokenizer: str | os.PathLike | None = None) -> Pretrained:
    """A freshly initialised model (encoder + the family's pretraining heads) from a preset name or config."""
    config = resolve_model_config(model)
    tok = load_tokenizer(tokenizer) if tokenizer else None
    return Pretrained(config, init_params(config, seed), tok, tokenizer_dir=tokenizer)


def export_hf(p: Pretrained, directory: str | os.PathLike) -> Path:
    """Write a Hugging Face directory (config.json + model.safetensors + tokenizer files) transformers loads."""
    from jaxbert.interop import hf

    if p.config.task:  # a fine-tuned model: the matching *For{SequenceClassification,QuestionAnswering,...}
        from jaxbert.interop import hf_tasks

        out = Path(hf_tasks.export_hf_task(p.config, jax.device_get(p.params), directory,
                                           label_names=getattr(p, "label_names", None)))
    else:
        out = Path(hf.export_hf(p.config, jax.device_get(p.params), directory))
    p._save_tokenizer(out)
    return out
