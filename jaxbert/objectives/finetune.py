"""Fine-tuning objectives: sequence classification, regression, extractive QA spans, token tagging.

One objective class serves every task kind; the kind picks the task head and the loss:

| kind           | head (ModelConfig.task) | batch labels                          | loss                        |
|----------------|-------------------------|---------------------------------------|-----------------------------|
| classification | classification, n >= 2  | `labels` int [B]                      | cross-entropy               |
| regression     | classification, n = 1   | `labels` float [B]                    | mean squared error          |
| span           | span                    | `start_positions`, `end_positions` [B] | mean of start / end CE      |
| token          | token, n tags           | `labels` int [B, T], -100 = ignore    | CE over the labelled tokens |

The model starts from a pretrained encoder (`initial_params(start)`, start opened from config.init): its
pretraining heads are dropped and a freshly initialised task head is added, as in the reference
*For{SequenceClassification,QuestionAnswering,TokenClassification} models.

Packed training rows (`data.pack_examples`, classification and regression only): several examples per row with
`segment_ids`, the head reading each example's [CLS], `labels` [B, K] (slot k for example k + 1) and the
loss the mean over the examples present. Span and token tasks stay unpacked: a SQuAD window already
fills its row (doc stride), and their labels are positions / per-token tags whose predictions map back
to one example per row; packing them would buy little padding and cost a re-indexing of every label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import CLASSIFIER_INPUT, ConfigError, ModelConfig, resolve_model_config
from jaxbert.model import build_model, logical_axes
from jaxbert.model.params import init_boxed
from jaxbert.objectives.base import Metrics, Objective, PyTree, encoder_fields, register_objective
from jaxbert.objectives.masking_setup import packed_fields
from jaxbert.objectives.mlm import encoder_flops_per_token, packed_inputs

PACKABLE_KINDS = ("classification", "regression")

KINDS = ("classification", "regression", "span", "token")
IGNORE = -100  # token labels that neither the loss nor the accuracy count (sub-word pieces, specials, padding)
_HEAD_OF_KIND = {"classification": "classification", "regression": "classification", "span": "span",
                 "token": "token"}


def task_model_config(base: ModelConfig, kind: str, num_labels: int = 0, **overrides: Any) -> ModelConfig:
    """The config of `base`'s encoder with a `kind` task head instead of its pretraining heads.

    The pooler is kept only where the reference task model has one (BERT / ALBERT sequence
    classification), so the params map one-to-one onto the matching transformers class.
    """
    if kind not in KINDS:
        raise ConfigError(f"config.task.kind: unknown task kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind == "regression":
        num_labels = 1
    elif kind == "span":
        num_labels = 2
    elif num_labels < 2 and kind == "classification":
        raise ConfigError(f"config.task.num_labels: a classification task needs >= 2 labels, got {num_labels} "
                          "(use kind='regression' for one real-valued output)")
    elif num_labels < 1:
        raise ConfigError(f"config.task.num_labels: a token task needs >= 1 tag, got {num_labels}")
    pooler = _HEAD_OF_KIND[kind] == "classification" and CLASSIFIER_INPUT[base.family] == "pooler"
    return base.replace(heads=(), task=_HEAD_OF_KIND[kind], num_labels=num_labels, pooler=pooler, **overrides)


def _paths(tree: PyTree) -> dict[tuple[str, ...], Any]:
    return {tuple(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def merge_pretrained(fresh: PyTree, pretrained: PyTree | None) -> tuple[PyTree, list[str]]:
    """`fresh` params with every leaf that `pretrained` holds at the same path and shape taken from it.

    Returns (params, the "/"-joined paths that kept their fresh init): the task head, and a pooler
    the pretrained model lacked. Pretraining-head params of `pretrained` are simply not used.
    """
    if pretrained is None:
        return fresh, ["/".join(p) for p in _paths(fresh)]
    source = _paths(pretrained)
    fresh_paths = []

    def pick(path: tuple, leaf: Any) -> Any:
        key = tuple(str(getattr(k, "key", k)) for k in path)
        old = source.get(key)
        if old is not None and tuple(np.shape(old)) == tuple(leaf.shape):
            return jnp.asarray(old, leaf.dtype)
        fresh_paths.append("/".join(key))
        return leaf

    return jax.tree_util.tree_map_with_path(pick, fresh), fresh_paths


def _weighted_mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return x.mean()
    w = weights.astype(jnp.float32)
    return (x * w).sum() / jnp.maximum(w.sum(), 1.0)


def classification_metrics(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
                           ) -> tuple[jax.Array, jax.Array]:
    """(mean cross-entropy, accuracy); logits [B, C], labels int [B] (packed: [B, K, C], [B, K], `weights` [B, K])."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    labels = labels.astype(jnp.int32)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return _weighted_mean(nll, weights), _weighted_mean(correct, weights)


def regression_loss(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean squared error of the single output [B, 1] against float scores [B] (HF's regression loss);
    packed: [B, K, 1] against [B, K] with `weights` [B, K]."""
    return _weighted_mean((logits[..., 0].astype(jnp.float32) - labels.astype(jnp.float32)) ** 2, weights)


def span_metrics(logits: jax.Array, starts: jax.Array, ends: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(loss, exact-span accuracy) of start/end logits [B, T, 2]: loss = (CE(start) + CE(end)) / 2.

    Rows whose positions fall outside [0, T) are ignored, as transformers' *ForQuestionAnswering
    ignores positions it clamps to T.
    """
    t = logits.shape[1]
    total = 0.0
    correct = jnp.ones(starts.shape, bool)
    valid = (starts >= 0) & (starts < t) & (ends >= 0) & (ends < t)
    for i, pos in enumerate((starts, ends)):
        logp = jax.nn.log_softmax(logits[..., i].astype(jnp.float32), axis=-1)
        pos = jnp.clip(pos.astype(jnp.int32), 0, t - 1)
        nll = -jnp.take_along_axis(logp, pos[:, None], axis=-1)[:, 0]
        total = total + (nll * valid).sum() / jnp.maximum(valid.sum(), 1)
        correct = correct & (jnp.argmax(logits[..., i], axis=-1) == pos)
    accuracy = (correct & valid).sum() / jnp.maximum(valid.sum(), 1)
    return total / 2.0, accuracy.astype(jnp.float32)


def token_metrics(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean CE, accuracy) over tokens whose label is not IGNORE; logits [B, T, C], labels [B, T]."""
    labels = labels.astype(jnp.int32)
    weights = (labels != IGNORE).astype(jnp.float32)
    safe = jnp.where(labels == IGNORE, 0, labels)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    denom = jnp.maximum(weights.sum(), 1.0)
    correct = (jnp.argmax(logits, axis=-1) == safe).astype(jnp.float32)
    return (nll * weights).sum() / denom, (correct * weights).sum() / denom


class Finetune(Objective):
    """Train an encoder plus a task head on labelled task data (the whole model trains)."""

    name = "finetune"

    def __init__(self, model_config: ModelConfig, kind: str, packed: int = 0) -> None:
        if kind not in KINDS:
            raise ConfigError(f"config.task.kind: unknown task kind {kind!r}; use one of {', '.join(KINDS)}")
        if packed and kind not in PACKABLE_KINDS:
            raise ConfigError(f"config.data.pack_examples: {kind} tasks are not packed (their labels are per-token "
                              "positions or tags of one example per row); set data.pack_examples=False")
        if packed and model_config.family == "xlnet":
            raise ConfigError("config.data.pack_examples: XLNet's relative attention takes no segment ids; "
                              "set data.pack_examples=False")
        if model_config.task != _HEAD_OF_KIND[kind]:
            raise ConfigError(f"a {kind} objective needs a model config with task={_HEAD_OF_KIND[kind]!r}, got "
                              f"{model_config.task!r}; build it with task_model_config()")
        if kind == "regression" and model_config.num_labels != 1:
            raise ConfigError("a regression objective needs num_labels=1")
        self.model_config = model_config
        self.kind = kind
        self.packed = int(packed)  # the most examples a packed training row holds; 0: unpacked
        self.fresh_params: list[str] = []  # what initial_params initialised afresh (the task head, ...)

    # ---- params ---------------------------------------------------------------------
    def init(self, rng: jax.Array) -> PyTree:
        return nn.unbox(init_boxed(self.model_config, rng))

    def initial_params(self, start: Any, rng: jax.Array) -> PyTree:
        """`start`'s params (a pretrained model: encoder, maybe pretraining heads) with freshly initialised
        leaves where they lack one (the task head...); its pretraining heads are dropped.

        Only the missing leaves are computed: the jitted init is pruned to them, so a large
        pretrained encoder is never randomly initialised just to be overwritten.
        """
        shapes = jax.eval_shape(self.init, rng)
        merged, self.fresh_params = merge_pretrained(shapes, start.params)
        wanted = set(self.fresh_params)

        def fresh_leaves(key: jax.Array) -> dict[str, jax.Array]:
            flat = {"/".join(p): leaf for p, leaf in _paths(self.init(key)).items()}
            return {p: flat[p] for p in wanted}

        fresh = jax.jit(fresh_leaves)(rng) if wanted else {}

        def pick(path: tuple, leaf: Any) -> Any:
            key = "/".join(str(getattr(k, "key", k)) for k in path)
            return fresh.get(key, leaf)

        return jax.tree_util.tree_map_with_path(pick, merged)

    def param_axes(self) -> PyTree:
        return logical_axes(self.model_config)

    # ---- forward & loss -------------------------------------------------------------
    def logits(self, params: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array | None = None,
               deterministic: bool = True) -> jax.Array:
        """The task head's output: [B, n] (classification / regression; packed [B, K, n]), [B, T, 2] (span),
        [B, T, n] (token)."""
        cfg = self.model_config
        ids = batch["input_ids"].astype(jnp.int32)
        mask = batch.get("attention_mask")
        if mask is None:
            mask = (ids != cfg.pad_token_id).astype(jnp.int32)
        types = batch.get("token_type_ids") if cfg.type_vocab_size > 0 else None
        packing = {}
        if self.packed and "segment_ids" in batch:
            segments, starts, _ = packed_inputs(batch, self.packed)
            packing = {"segment_ids": segments, "segment_starts": starts}
        out = build_model(cfg).apply({"params": params}, ids, mask, types, deterministic=deterministic,
                                     rngs=None if deterministic or rng is None else {"dropout": rng}, **packing)
        return out.logits[cfg.task]

    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        del frozen
        logits = self.logits(params, batch, rng, deterministic)
        present = packed_inputs(batch, self.packed)[2] if self.packed else None
        if self.kind == "classification":
            loss, acc = classification_metrics(logits, batch["labels"], present)
            metrics = {"accuracy": acc}
        elif self.kind == "regression":
            loss = regression_loss(logits, batch["labels"], present)
            metrics = {"mse": loss}
        elif self.kind == "span":
            loss, acc = span_metrics(logits, batch["start_positions"], batch["end_positions"])
            metrics = {"span_accuracy": acc}
        else:
            loss, acc = token_metrics(logits, batch["labels"])
            metrics = {"token_accuracy": acc}
        metrics["loss"] = loss
        return loss, metrics

    # ---- shapes & cost --------------------------------------------------------------
    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        fields = encoder_fields(self.model_config, batch_size, seq_len)
        if self.kind == "span":
            fields["start_positions"] = ((batch_size,), np.int32)
            fields["end_positions"] = ((batch_size,), np.int32)
        elif self.kind == "token":
            fields["labels"] = ((batch_size, seq_len), np.int32)
        else:
            shape = (batch_size, self.packed) if self.packed else (batch_size,)
            fields["labels"] = (shape, np.float32 if self.kind == "regression" else np.int32)
        return {**fields, **packed_fields(self.packed, batch_size, seq_len)}

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """6 × forward matmul FLOPs of the encoder (the task head is negligible)."""
        return 3.0 * batch_size * seq_len * encoder_flops_per_token(self.model_config, seq_len)

    def progress_metrics(self) -> tuple[str, ...]:
        return ("loss", {"classification": "accuracy", "regression": "mse", "span": "span_accuracy",
                         "token": "token_accuracy"}[self.kind])


@register_objective("finetune")
def make_finetune(config: Any, tokenizer: Any = None) -> Finetune:
    """A Finetune objective from an experiment config: `model` (preset / dict), `task.kind`, `task.num_labels`,
    `task.classifier_dropout`. Pretrained params are attached by `jaxbert.finetune` (from `config.init`)."""
    del tokenizer
    model = config.model.to_dict() if hasattr(config.model, "to_dict") else config.model
    base = resolve_model_config(model)
    task = config.task
    kind = str(task.kind)
    overrides = {}
    if task.get("classifier_dropout") is not None:
        overrides["classifier_dropout"] = float(task.classifier_dropout)
    return Finetune(task_model_config(base, kind, int(task.get("num_labels", 0)), **overrides), kind)
